"""``python -m gru_onnx.cli``: the command line, as the ``gru-onnx`` script runs it."""

from gru_onnx.cli.app import main

main()
