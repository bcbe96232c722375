// The page side of gru_onnx.runners.web: one onnxruntime-web session, fed and read as wire.mjs messages.
import { decode, encode, fromOrt, toOrt } from "./wire.mjs";

let ort = null;
let session = null;

/** Thrown when the backend cannot run in this browser: Python reports it as unavailable. */
function unavailable(why) {
  return new Error(`unavailable: ${why}`);
}

/**
 * Load onnxruntime-web and the model.
 * @param {{ortScript: string, backend: "wasm"|"webgpu", threads: number|null, model: string,
 *          data: {location: string, url: string}[]}} cfg
 */
window.gruOpen = async (cfg) => {
  let adapter = null;
  if (cfg.backend === "webgpu") {
    if (!navigator.gpu) throw unavailable("this Chromium offers no WebGPU (navigator.gpu is undefined)");
    adapter = await navigator.gpu.requestAdapter();
    if (!adapter) throw unavailable("this Chromium offers WebGPU but no adapter (no GPU it can use)");
  }
  ort = await import(cfg.ortScript);
  if (cfg.threads) ort.env.wasm.numThreads = cfg.threads;
  ort.env.logLevel = "error";
  const options = {
    executionProviders: [cfg.backend],
    graphOptimizationLevel: "all",
    logSeverityLevel: 3,
    externalData: cfg.data.map((d) => ({ path: d.location, data: d.url })),
  };
  session = await ort.InferenceSession.create(cfg.model, options);
  const info = adapter && adapter.info ? adapter.info : {};
  return {
    inputs: session.inputNames,
    outputs: session.outputNames,
    threads: ort.env.wasm.numThreads,
    isolated: self.crossOriginIsolated,
    version: ort.env.versions.web,
    adapter: adapter ? [info.vendor, info.architecture, info.description].filter(Boolean).join(" ") || "unnamed" : null,
    shaderF16: adapter ? adapter.features.has("shader-f16") : null,
    userAgent: navigator.userAgent,
  };
};

/** Base64 of bytes (Playwright hands bytes in as a Uint8Array, but only JSON-like values back). */
function base64(bytes) {
  if (typeof bytes.toBase64 === "function") return bytes.toBase64();
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

/**
 * Run one message of feeds (wire.mjs); returns the outputs, in the graph's order, as one message in base64.
 * @param {Uint8Array} message
 */
window.gruRun = async (message) => {
  const { tensors } = decode(message);
  const feeds = Object.fromEntries(tensors.map((t) => [t.name, toOrt(ort, t)]));
  const results = await session.run(feeds);
  return base64(encode({ ok: true }, session.outputNames.map((name) => fromOrt(name, results[name]))));
};

/**
 * Run one message of feeds and return the seconds the run took, measured in the page
 * (performance.now: 5 us steps when cross-origin isolated, as the runner's server makes it).
 * @param {Uint8Array} message
 */
window.gruTime = async (message) => {
  const { tensors } = decode(message);
  const feeds = Object.fromEntries(tensors.map((t) => [t.name, toOrt(ort, t)]));
  const start = performance.now();
  await session.run(feeds);
  return (performance.now() - start) / 1e3;
};

window.gruClose = async () => {
  if (session) await session.release();
  session = null;
};

window.gruReady = true;
