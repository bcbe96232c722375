"""``gru-onnx quantize``, and checking its int8 files: the reference and tolerances named, bad
input one line with exit 2 and nothing written."""

from __future__ import annotations

import onnx


def test_check_of_an_int8_file_names_its_reference_and_tolerances(run_cli, tmp_path):
    assert run_cli("export", "--activation", "relu", "--strategy", "loop", "--dynamic-seq", "--no-check").exit_code == 0
    result = run_cli("quantize", "gru.onnx", "-o", "int8.onnx", "--mode", "dynamic")
    assert result.exit_code == 0, result.output
    assert "int8 (dynamic, per channel)" in result.output
    inspected = run_cli("inspect", "int8.onnx")
    assert "int8           dynamic, per channel: 3 weight(s)" in inspected.output
    checked = run_cli("check", "int8.onnx")
    assert checked.exit_code == 0, checked.output
    assert "int8 dynamic file vs dequantized int8 weights" in " ".join(checked.output.split())


def test_bad_input_is_one_line_exit_2_and_nothing_written(run_cli, tmp_path):
    assert run_cli("export", "--activation", "relu", "--no-check").exit_code == 0
    assert run_cli("quantize", "gru.onnx", "-o", "int8.onnx").exit_code == 0
    assert run_cli("export", "--strategy", "native", "-o", "native.onnx", "--no-check").exit_code == 0
    plain = onnx.load(tmp_path / "gru.onnx")
    del plain.metadata_props[:]
    onnx.save(plain, tmp_path / "plain.onnx")
    cases = [
        (["int8.onnx"], "already quantized"),
        (["plain.onnx"], "no gru-onnx metadata"),
        (["native.onnx"], "nothing to quantize"),
        (["missing.onnx"], "no such file"),
        (["gru.onnx", "--mode", "int4"], "Invalid value for '--mode'"),
    ]
    for args, message in cases:
        result = run_cli("quantize", *args, "-o", "out.onnx")
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output, (args, result.output)
        if not message.startswith("Invalid value"):  # click's own errors: one line through main()
            assert len(result.output.strip().splitlines()) == 1, result.output
        assert not (tmp_path / "out.onnx").exists()
