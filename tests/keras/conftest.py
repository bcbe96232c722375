"""Keras runs on the torch backend in these tests (set before anything imports Keras)."""

import os
import sys

if "keras" not in sys.modules:
    os.environ["KERAS_BACKEND"] = "torch"
