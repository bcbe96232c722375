"""``gru_onnx.check_parity``: the source resolved once (the model, or rebuilt from the file),
then the plain or the streaming check, which a streaming file always gets."""

from __future__ import annotations

import flat


def test_a_streaming_file_is_always_checked_chunk_by_chunk(streaming_file):
    _, path = streaming_file
    report = flat.check_parity(None, path)
    assert [r.runtime for r in report.results] == [
        "onnxruntime-cpu, chunks whole", "onnxruntime-cpu, chunks 1", "onnxruntime-cpu, chunks 3+1+4+2...",
    ]  # fmt: skip
    assert report.passed


def test_the_source_is_the_given_model_the_checkpoint_or_the_file(exported, tmp_path):
    gru, x, path = exported
    from_file = flat.check_parity(None, path)
    given = flat.check_parity(gru, path, (x,))
    from_checkpoint = flat.check_parity(None, path, checkpoint=tmp_path / "source.pt")
    assert [r.reference for r in (from_file, given, from_checkpoint)] == ["metadata", "model", "checkpoint"]
    assert all(r.passed for r in (from_file, given, from_checkpoint))
    assert not any(w.compared for w in from_file.weights)  # the file against itself: wiring only
    for report in (given, from_checkpoint):  # against a source: its weights are compared too
        assert report.weights and all(w.passed for w in report.weights)
    assert given.samples[0]["input"] == list(x.shape)  # the example args are the first sample
