// The Node.js side of gru_onnx.runners.node: one process holds one onnxruntime-node session.
//   node node_driver.mjs CACHE_DIR
// Reads messages (wire.mjs) on stdin, answers each on stdout, in order:
//   {op: "open", path, threads}  -> {ok, inputs, outputs, versions, node, threads}
//   {op: "run"} + feeds          -> {ok} + the outputs in the graph's order
//   {op: "time"} + feeds         -> {ok, seconds}: one run timed here (performance.now), no outputs
//   {op: "close"}                -> {ok}, then exits
// Any failure answers {ok: false, error: "one line"}; nothing else is ever written to stdout.
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";

import { decode, encode, fromOrt, messageSize, toOrt } from "./wire.mjs";

const cache = process.argv[2];
const ort = createRequire(path.join(path.resolve(cache), "package.json"))("onnxruntime-node");
console.log = console.info = console.warn = console.error; // stdout carries messages only

/** @type {any} */
let session = null;

async function handle(header, tensors) {
  if (header.op === "open") {
    const options = { logSeverityLevel: 3, graphOptimizationLevel: "all" };
    if (header.threads) options.intraOpNumThreads = header.threads;
    session = await ort.InferenceSession.create(header.path, options);
    return [{
      ok: true, inputs: session.inputNames, outputs: session.outputNames, versions: ort.env.versions,
      node: process.version, cores: os.availableParallelism ? os.availableParallelism() : os.cpus().length,
    }, []];
  }
  if (header.op === "run") {
    const feeds = Object.fromEntries(tensors.map((t) => [t.name, toOrt(ort, t)]));
    const results = await session.run(feeds);
    return [{ ok: true }, session.outputNames.map((name) => fromOrt(name, results[name]))];
  }
  if (header.op === "time") {
    const feeds = Object.fromEntries(tensors.map((t) => [t.name, toOrt(ort, t)]));
    const start = performance.now();
    await session.run(feeds);
    return [{ ok: true, seconds: (performance.now() - start) / 1e3 }, []];
  }
  if (header.op === "close") {
    if (session) await session.release();
    session = null;
    return [{ ok: true, closing: true }, []];
  }
  throw new Error(`unknown op ${JSON.stringify(header.op)}`);
}

let chunks = [];
let buffered = 0;
let needed = 4; // bytes the next message needs before it can be decoded
let queue = Promise.resolve();

function answer([header, tensors]) {
  process.stdout.write(encode(header, tensors));
  if (header.closing) process.stdout.end(() => process.exit(0));
}

process.stdin.on("data", (chunk) => {
  chunks.push(chunk);
  buffered += chunk.byteLength;
  while (buffered >= needed) {
    const bytes = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
    chunks = [bytes];
    const size = messageSize(bytes);
    if (size === null || bytes.byteLength < size) {
      needed = size === null ? bytes.byteLength + 1 : size;
      break;
    }
    const { header, tensors } = decode(bytes.subarray(0, size));
    chunks = bytes.byteLength > size ? [bytes.subarray(size)] : [];
    buffered = bytes.byteLength - size;
    needed = 4;
    queue = queue
      .then(() => handle(header, tensors))
      .catch((error) => [{ ok: false, error: String(error && error.message ? error.message : error).split("\n")[0] }, []])
      .then(answer);
  }
});
process.stdin.on("end", () => queue.then(() => process.exit(0)));
