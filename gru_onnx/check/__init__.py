"""The check core: comparing outputs, the reference side, the runner loop, the plain and streaming checks.

:func:`gru_onnx.check_parity` (in :mod:`gru_onnx.parity`) chooses between the two checks.
"""
