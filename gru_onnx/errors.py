"""Exceptions gru-onnx raises on purpose; the CLI turns them into one-line messages."""

from __future__ import annotations


class GruOnnxError(Exception):
    """Base class for errors that gru-onnx reports to the user."""

    exit_code = 1


class GruOnnxUsageError(GruOnnxError, ValueError):
    """Bad input from the caller: unknown names, wrong shapes, unreadable files (CLI exit 2)."""

    exit_code = 2


class ExportError(GruOnnxError):
    """The model could not be exported with the requested strategy."""

    exit_code = 2


class InternalError(GruOnnxError):
    """gru-onnx produced something it should not have (a bug; please report it)."""

    exit_code = 3
