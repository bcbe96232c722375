"""``gru-stream.js`` under Node.js (with onnxruntime-node): frame by frame it equals the bundle's
PyTorch reference, ``reset()`` starts over, and every misuse throws a GruStreamError saying what
is wrong."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import torch
from webtools import export_file, lone_gru

from gru_onnx import CustomGRU
from gru_onnx.options import WebOptions
from gru_onnx.web.bundle import package_web
from gru_onnx.web.setup import cache_dir, find_node

SCRIPT = r"""
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
const [cache, streamModule, loop, unrolled] = process.argv.slice(2);
const ort = createRequire(cache + "/package.json")("onnxruntime-node");
const { GruStream, GruStreamError } = await import(streamModule);

const out = {};
async function error(name, action) {
  try {
    await action();
    out[name] = "no error";
  } catch (e) {
    out[name] = `${e instanceof GruStreamError ? "GruStreamError" : e.constructor.name}: ${e.message}`;
  }
}
const frame = (batch = 1, steps = 1) =>
  new ort.Tensor("float32", new Float32Array(batch * steps * 5).fill(0.5), [batch, steps, 5]);

// Frame by frame on the bundle's reference, twice (reset between): the largest error against PyTorch.
const manifest = JSON.parse(readFileSync(loop + "/manifest.json", "utf8"));
const stream = await GruStream.create(loop + "/manifest.json", { ort });
const ref = manifest.reference;
const floats = (file) => new Float32Array(new Uint8Array(readFileSync(loop + "/" + file)).buffer);
const x = floats(ref.inputs[0].file);
const y = floats(ref.outputs[0].file);
const [, frames, features] = ref.inputs[0].shape;
const hidden = ref.outputs[0].shape[2];
out.errors = [];
for (let pass = 0; pass < 2; pass++) {
  stream.reset();
  let worst = 0;
  for (let t = 0; t < frames; t++) {
    const step = x.slice(t * features, (t + 1) * features);
    const got = await stream.run({ input: new ort.Tensor("float32", step, [1, 1, features]) });
    for (let k = 0; k < hidden; k++) worst = Math.max(worst, Math.abs(got.output.data[k] - y[t * hidden + k]));
  }
  out.errors.push(worst);
}
out.names = [stream.inputNames, stream.outputNames, Object.keys(stream.states), stream.batchSize];
out.plainObject = Object.keys(await stream.run({ input: { data: new Float32Array(10), dims: [1, 2, 5] } }));

stream.reset();
await error("unknown", () => stream.run({ inputs: frame() }));
await error("state", () => stream.run({ input: frame(), state_in: frame() }));
await error("missing", () => stream.run({}));
await error("dtype", () => stream.run({ input: new ort.Tensor("int32", new Int32Array(5), [1, 1, 5]) }));
await error("rank", () => stream.run({ input: new ort.Tensor("float32", new Float32Array(5), [1, 5]) }));
await error("axis", () => stream.run({ input: new ort.Tensor("float32", new Float32Array(4), [1, 1, 4]) }));
await error("length", () => stream.run({ input: { data: new Float32Array(4), dims: [1, 1, 5] } }));
await error("notTensor", () => stream.run({ input: [1, 2, 3] }));
await stream.run({ input: frame(1) });
await error("batch", () => stream.run({ input: frame(2) }));
stream.reset();
await error("afterReset", () => stream.run({ input: frame(2) }));
await error("overlap", () => Promise.all([stream.run({ input: frame(2) }), stream.run({ input: frame(2) })]));
await error("noOrt", () => GruStream.create(loop + "/manifest.json", {}));
const fixed = await GruStream.create(unrolled + "/manifest.json", { ort });
await error("chunk", () => fixed.run({ input: frame(1, 2) }));
await error("chunkOk", () => fixed.run({ input: frame(1, 1) }));
console.log(JSON.stringify(out));
"""


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("streams")
    made = {}
    for strategy, options in (("loop", {}), ("unrolled", {"chunk": 1})):
        path = export_file(lone_gru(), (torch.randn(2, 1, 5),), folder / f"{strategy}.onnx", strategy=strategy,
                           streaming=True, **options)  # fmt: skip
        made[strategy] = package_web(path, folder / f"{strategy}-web", WebOptions(frames=30)).path
    return made


@pytest.fixture(scope="module")
def node_results(node_ready: None, ort_web_ready: None, bundles: dict[str, Path], tmp_path_factory) -> dict[str, Any]:
    script = tmp_path_factory.mktemp("script") / "stream_test.mjs"
    script.write_text(SCRIPT)
    module = (bundles["loop"] / "gru-stream.js").as_uri()
    command = [str(find_node()), str(script), str(cache_dir()), module, str(bundles["loop"]), str(bundles["unrolled"])]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_frame_by_frame_equals_the_pytorch_reference(node_results):
    first, second = node_results["errors"]
    print(f"PARITY gru-stream.js on onnxruntime-node, 30 frames one per call: {first:.1e}")
    assert first < 1e-5 and second == first  # reset() starts the same stream over
    assert node_results["names"] == [["input"], ["output", "h_n"], ["state_in"], 1]
    assert node_results["plainObject"] == ["output", "h_n"]  # {data, dims} feeds are made tensors


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("unknown", "unknown input 'inputs': the model takes input"),
        ("state", "'state_in' is a state input: the stream carries it from call to call; feed only input "
                  "(reset() zeros the states)"),
        ("missing", "missing input 'input': the model takes input"),
        ("dtype", "input 'input' is int32; the model takes float32"),
        ("rank", "input 'input' has shape [1, 5] (2 axes); the model takes [batch, seq, 5] (3 axes)"),
        ("axis", "input 'input' has shape [1, 1, 4]; the model takes [batch, seq, 5]: axis 2 must be 5 "
                 "(the size is fixed)"),
        ("length", "input 'input' holds 4 values; its shape [1, 1, 5] needs 5"),
        ("notTensor", "input 'input' must be an ort.Tensor or {data, dims}"),
        ("batch", "this chunk has batch size 2, the stream's states 1: call reset() before changing the batch size"),
        ("overlap", "run() called while the previous run() is still going: await each call (the states pass from "
                    "one to the next)"),
        ("noOrt", "GruStream.create: pass options.ort, the onnxruntime-web module "
                  "(import * as ort from './ort/ort.wasm.min.mjs')"),
        ("chunk", "input 'input' has shape [1, 2, 5]; the model takes [batch, 1, 5]: axis 1 must be 1 "
                  "(the chunk length is fixed)"),
    ],
)  # fmt: skip
def test_misuse_throws_a_clear_error(node_results, case, message):
    assert node_results[case] == f"GruStreamError: {message}"


def test_what_misuse_leaves_working(node_results):
    assert node_results["afterReset"] == "no error"  # a new batch size after reset()
    assert node_results["chunkOk"] == "no error"


ODD_SCRIPT = r"""
import { createRequire } from "node:module";
const [cache, streamModule, folder] = process.argv.slice(2);
const ort = createRequire(cache + "/package.json")("onnxruntime-node");
const { GruStream } = await import(streamModule);
const stream = await GruStream.create(folder + "/manifest.json", { ort });
const got = await stream.run({ input: new ort.Tensor("float32", new Float32Array(5).fill(0.5), [1, 1, 5]) });
console.log(JSON.stringify({ model: stream.manifest.model, outputs: Object.keys(got) }));
"""


def test_a_model_name_a_url_would_misread_is_opened(node_ready, ort_web_ready, tmp_path):
    # The manifest names the model and its data file as they are on disk; gru-stream.js encodes
    # each path segment, so '#', '%41', '?' and ' ' reach onnxruntime-node as the file's own name.
    gru = CustomGRU(5, 32, batch_first=True).eval()  # weights large enough for a data file
    path = export_file(gru, (torch.randn(2, 1, 5),), tmp_path / "a#b%41 ?.onnx", strategy="loop", streaming=True,
                       external_data=True)  # fmt: skip
    bundle = package_web(path, tmp_path / "site", WebOptions(frames=4))
    assert bundle.manifest["model"] == "a#b%41 ?.onnx" and bundle.manifest["data"]
    script = tmp_path / "odd.mjs"
    script.write_text(ODD_SCRIPT)
    module = (bundle.path / "gru-stream.js").as_uri()
    done = subprocess.run([str(find_node()), str(script), str(cache_dir()), module, str(bundle.path)],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"model": "a#b%41 ?.onnx", "outputs": ["output", "h_n"]}
