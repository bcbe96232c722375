// gru-stream.js: run a gru-onnx streaming file chunk by chunk in JavaScript, its GRU states carried.
// The twin of Python's gru_onnx.StreamingSession. Written by `gru-onnx package FILE --web DIR`
// beside the model and its manifest.json (which lists what ONNX metadata would: JavaScript cannot
// read that without a protobuf parser).
//
//   import * as ort from "./ort/ort.wasm.min.mjs";
//   import { GruStream } from "./gru-stream.js";
//   const stream = await GruStream.create("manifest.json", { ort });
//   const out = await stream.run({ features: new ort.Tensor("float32", frame, [1, 1, 42]) });
//   stream.reset(); // a new stream: zero states
//
// States start at zero (in the file's dtype) with the batch size of the first call; they are
// fed to every call and replaced by its state outputs. Feeds are checked against the manifest
// before the model runs: a wrong name, dtype or shape throws a GruStreamError saying which.

/**
 * @typedef {object} TensorInfo  One input or output of the model.
 * @property {string} name
 * @property {string} dtype  ONNX Runtime's type name: float32, float16, int64, int32, bool, ...
 * @property {(number|string)[]} shape  each axis as its size, or its name when it is free
 * @property {number|null} time_axis  the sequence axis, or null when the tensor has none
 */

/**
 * @typedef {object} StatePair  One GRU's state: fed as `input`, returned as `output`.
 * @property {string} input
 * @property {string} output
 * @property {string} module  the CustomGRU's path in the PyTorch model ("" for a lone GRU)
 * @property {[number|string, number, number]} shape  [batch, layers * directions, hidden]
 * @property {string} dtype
 */

/**
 * @typedef {object} Manifest  manifest.json of a gru-onnx web bundle.
 * @property {"gru-onnx-web"} format
 * @property {number} version
 * @property {string} name
 * @property {string} model  the ONNX file, relative to the manifest
 * @property {{location: string, file: string}[]} data  external data files (location as the model names it)
 * @property {TensorInfo[]} inputs  the inputs a caller feeds (states excluded)
 * @property {TensorInfo[]} outputs  the outputs a caller gets (states excluded)
 * @property {StatePair[]} states
 * @property {number|null} chunk  the fixed chunk length, or null when chunks may have any length
 */

/**
 * @typedef {object} GruStreamOptions
 * @property {any} [ort]  the onnxruntime-web (or onnxruntime-node) module; default globalThis.ort
 * @property {Manifest} [manifest]  the manifest, when the caller has read it already
 * @property {object} [sessionOptions]  passed to ort.InferenceSession.create
 */

/** The error every misuse throws: a wrong feed name, dtype or shape, or overlapping runs. */
export class GruStreamError extends Error {
  constructor(message) {
    super(message);
    this.name = "GruStreamError";
  }
}

const ARRAY_TYPES = [
  [Float32Array, "float32"], [Float64Array, "float64"], [BigInt64Array, "int64"], [BigUint64Array, "uint64"],
  [Int32Array, "int32"], [Uint32Array, "uint32"], [Int16Array, "int16"], [Int8Array, "int8"], [Uint8Array, "uint8"],
  [Uint16Array, "uint16"],
];
const ZEROS = {
  float32: Float32Array, float64: Float64Array, float16: Uint16Array, int64: BigInt64Array, int32: Int32Array,
  uint8: Uint8Array, bool: Uint8Array, int8: Int8Array,
};

/** The dtype a feed declares (`type`), else the one its typed array holds. */
function dtypeOf(feed) {
  if (typeof feed.type === "string") return feed.type;
  if (typeof globalThis.Float16Array === "function" && feed.data instanceof globalThis.Float16Array) return "float16";
  const found = ARRAY_TYPES.find(([Typed]) => feed.data instanceof Typed);
  return found ? found[1] : typeof feed.data;
}

const show = (shape) => `[${shape.join(", ")}]`;

async function readJson(url) {
  if (url.protocol === "file:") {
    const { readFile } = await import("node:fs/promises");
    return JSON.parse(await readFile(url, "utf8"));
  }
  const response = await fetch(url);
  if (!response.ok) throw new GruStreamError(`cannot read ${url}: HTTP ${response.status}`);
  return response.json();
}

/** A relative file path as a URL path: each segment percent-encoded, so a name with #, ?, % or a
 * newline names that file (a bare "a#b.onnx" would be the file "a" with a fragment). */
export function encodePath(path) {
  return String(path).split("/").map(encodeURIComponent).join("/");
}

function baseUrl() {
  if (globalThis.location && globalThis.location.href) return globalThis.location.href;
  return `file://${globalThis.process.cwd()}/`;
}

/** A streaming model: `run` takes and gives its inputs and outputs by name, the states are kept. */
export class GruStream {
  /**
   * Load the manifest at `url` (relative to the page, or a path under Node.js) and the model it names.
   * @param {string|URL} url
   * @param {GruStreamOptions} [options]
   * @returns {Promise<GruStream>}
   */
  static async create(url, options = {}) {
    const ort = options.ort ?? globalThis.ort;
    if (!ort || typeof ort.InferenceSession !== "function") {
      throw new GruStreamError("GruStream.create: pass options.ort, the onnxruntime-web module (import * as ort from './ort/ort.wasm.min.mjs')");
    }
    const base = new URL(url, baseUrl());
    const manifest = options.manifest ?? (await readJson(base));
    if (manifest.format !== "gru-onnx-web") throw new GruStreamError(`${base} is not a gru-onnx web manifest`);
    const model = new URL(encodePath(manifest.model), base);
    const sessionOptions = { ...(options.sessionOptions || {}) };
    let source = model.href;
    if (model.protocol === "file:") {
      const { fileURLToPath } = await import("node:url");
      source = fileURLToPath(model); // a path: onnxruntime-node reads the data file beside it
    } else if (manifest.data.length) {
      sessionOptions.externalData = manifest.data.map((d) => ({ path: d.location, data: new URL(encodePath(d.file), base).href }));
    }
    const session = await ort.InferenceSession.create(source, sessionOptions);
    return new GruStream(ort, session, manifest);
  }

  /**
   * Use `create`; this wraps a session made already.
   * @param {any} ort
   * @param {any} session  an ort.InferenceSession of the manifest's model
   * @param {Manifest} manifest
   */
  constructor(ort, session, manifest) {
    this.ort = ort;
    this.session = session;
    /** @type {Manifest} */
    this.manifest = manifest;
    /** @type {string[]} */
    this.inputNames = manifest.inputs.map((i) => i.name);
    /** @type {string[]} */
    this.outputNames = manifest.outputs.map((o) => o.name);
    /** @type {Object<string, any> | null} */
    this._states = null;
    this._busy = false;
  }

  /** The batch size the states have, or null before the first call and after reset(). @returns {number|null} */
  get batchSize() {
    if (!this._states || !this.manifest.states.length) return null;
    return Number(this._states[this.manifest.states[0].input].dims[0]);
  }

  /** The current states by state input name (ort.Tensors); empty before the first call. */
  get states() {
    return { ...(this._states || {}) };
  }

  /** Forget the states: the next call starts a new stream from zero states (of any batch size). */
  reset() {
    this._states = null;
  }

  /**
   * Run one chunk: `feeds` by input name (ort.Tensors, or {data, dims, type?}); returns the
   * outputs by name (ort.Tensors), states excluded, and keeps the new states.
   * @param {Object<string, any>} feeds
   * @returns {Promise<Object<string, any>>}
   */
  async run(feeds) {
    if (this._busy) throw new GruStreamError("run() called while the previous run() is still going: await each call (the states pass from one to the next)");
    const tensors = this._check(feeds);
    const batch = this._batch(tensors);
    if (!this._states) this._states = this._zeros(batch);
    this._busy = true;
    let results;
    try {
      results = await this.session.run({ ...tensors, ...this._states });
    } finally {
      this._busy = false;
    }
    this._states = Object.fromEntries(this.manifest.states.map((s) => [s.input, results[s.output]]));
    return Object.fromEntries(this.outputNames.map((name) => [name, results[name]]));
  }

  /** Release the model's session. */
  async release() {
    await this.session.release();
  }

  _check(feeds) {
    if (feeds === null || typeof feeds !== "object") throw new GruStreamError(`run() takes an object of feeds by name: ${this.inputNames.join(", ")}`);
    const stateNames = new Set(this.manifest.states.map((s) => s.input));
    for (const name of Object.keys(feeds)) {
      if (stateNames.has(name)) {
        throw new GruStreamError(`'${name}' is a state input: the stream carries it from call to call; feed only ${this.inputNames.join(", ")} (reset() zeros the states)`);
      }
      if (!this.inputNames.includes(name)) {
        throw new GruStreamError(`unknown input '${name}': the model takes ${this.inputNames.join(", ")}`);
      }
    }
    const tensors = {};
    for (const info of this.manifest.inputs) {
      const feed = feeds[info.name];
      if (feed === undefined) throw new GruStreamError(`missing input '${info.name}': the model takes ${this.inputNames.join(", ")}`);
      if (!feed || !feed.data || !feed.dims) throw new GruStreamError(`input '${info.name}' must be an ort.Tensor or {data, dims}`);
      const dtype = dtypeOf(feed);
      if (dtype !== info.dtype) throw new GruStreamError(`input '${info.name}' is ${dtype}; the model takes ${info.dtype}`);
      const dims = Array.from(feed.dims, Number);
      const wanted = `the model takes ${show(info.shape)}`;
      if (dims.length !== info.shape.length) {
        throw new GruStreamError(`input '${info.name}' has shape ${show(dims)} (${dims.length} axes); ${wanted} (${info.shape.length} axes)`);
      }
      info.shape.forEach((size, axis) => {
        if (typeof size === "number" && dims[axis] !== size) {
          const what = axis === info.time_axis ? "the chunk length is fixed" : "the size is fixed";
          throw new GruStreamError(`input '${info.name}' has shape ${show(dims)}; ${wanted}: axis ${axis} must be ${size} (${what})`);
        }
      });
      const count = dims.reduce((n, d) => n * d, 1);
      if (feed.data.length !== count) {
        throw new GruStreamError(`input '${info.name}' holds ${feed.data.length} values; its shape ${show(dims)} needs ${count}`);
      }
      tensors[info.name] = feed instanceof this.ort.Tensor ? feed : new this.ort.Tensor(dtype, feed.data, dims);
    }
    this._sameSizes(tensors);
    return tensors;
  }

  /** Axes that share a name (the batch, the sequence) must have one size across the inputs. */
  _sameSizes(tensors) {
    const seen = {};
    for (const info of this.manifest.inputs) {
      info.shape.forEach((size, axis) => {
        if (typeof size !== "string" || !size) return;
        const got = Number(tensors[info.name].dims[axis]);
        if (size in seen && seen[size][0] !== got) {
          throw new GruStreamError(`inputs disagree on axis '${size}': '${seen[size][1]}' has ${seen[size][0]}, '${info.name}' has ${got}`);
        }
        seen[size] = [got, info.name];
      });
    }
  }

  /** The batch size of this chunk (checked against the states'). */
  _batch(tensors) {
    const states = this.manifest.states;
    if (!states.length) return null;
    const axis = states[0].shape[0];
    let batch = typeof axis === "number" ? axis : null;
    for (const info of this.manifest.inputs) {
      const at = info.shape.indexOf(axis);
      if (typeof axis === "string" && at >= 0) batch = Number(tensors[info.name].dims[at]);
    }
    if (batch === null) throw new GruStreamError(`no input carries the states' batch axis '${axis}'`);
    if (this._states && batch !== this.batchSize) {
      throw new GruStreamError(`this chunk has batch size ${batch}, the stream's states ${this.batchSize}: call reset() before changing the batch size`);
    }
    return batch;
  }

  _zeros(batch) {
    return Object.fromEntries(this.manifest.states.map((s) => {
      const dims = [batch, s.shape[1], s.shape[2]];
      const Typed = ZEROS[s.dtype];
      if (!Typed) throw new GruStreamError(`state '${s.input}' has dtype ${s.dtype}, which gru-stream.js cannot make zeros of`);
      return [s.input, new this.ort.Tensor(s.dtype, new Typed(dims[0] * dims[1] * dims[2]), dims)];
    }));
  }
}
