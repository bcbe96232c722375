// The message format between Python and the JavaScript runtimes (gru_onnx/web/wire.py is its twin).
// One message: a 4-byte little-endian header length, the UTF-8 JSON header, then the raw
// little-endian bytes of each tensor the header lists under "tensors" ({name, dtype, shape, nbytes}).

/** Typed array class holding each ONNX Runtime tensor type (float16 as its raw 16-bit patterns). */
export const ARRAYS = {
  float32: Float32Array, float64: Float64Array, float16: Uint16Array,
  int64: BigInt64Array, uint64: BigUint64Array, int32: Int32Array, uint32: Uint32Array,
  int16: Int16Array, uint16: Uint16Array, int8: Int8Array, uint8: Uint8Array, bool: Uint8Array,
};

/**
 * One message from a header object and tensors ({name, dtype, shape, bytes}).
 * @param {object} header
 * @param {{name: string, dtype: string, shape: number[], bytes: Uint8Array}[]} tensors
 * @returns {Uint8Array}
 */
export function encode(header, tensors = []) {
  const specs = tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, nbytes: t.bytes.byteLength }));
  const head = new TextEncoder().encode(JSON.stringify({ ...header, tensors: specs }));
  const total = 4 + head.byteLength + specs.reduce((n, s) => n + s.nbytes, 0);
  const out = new Uint8Array(total);
  new DataView(out.buffer).setUint32(0, head.byteLength, true);
  out.set(head, 4);
  let offset = 4 + head.byteLength;
  for (const t of tensors) {
    out.set(t.bytes, offset);
    offset += t.bytes.byteLength;
  }
  return out;
}

/**
 * The byte size of the message `bytes` starts with, or `null` while its header is incomplete.
 * @param {Uint8Array} bytes
 * @returns {number | null}
 */
export function messageSize(bytes) {
  if (bytes.byteLength < 4) return null;
  const headSize = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true);
  if (bytes.byteLength < 4 + headSize) return null;
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(4, 4 + headSize)));
  return (header.tensors || []).reduce((n, s) => n + s.nbytes, 4 + headSize);
}

/**
 * Split one message into its header and tensors; `null` when `bytes` holds less than a whole message.
 * @param {Uint8Array} bytes
 * @returns {{header: object, tensors: {name: string, dtype: string, shape: number[], bytes: Uint8Array}[], size: number} | null}
 */
export function decode(bytes) {
  if (bytes.byteLength < 4) return null;
  const headSize = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true);
  if (bytes.byteLength < 4 + headSize) return null;
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(4, 4 + headSize)));
  let offset = 4 + headSize;
  const specs = header.tensors || [];
  if (bytes.byteLength < offset + specs.reduce((n, s) => n + s.nbytes, 0)) return null;
  const tensors = specs.map((s) => {
    const t = { name: s.name, dtype: s.dtype, shape: s.shape, bytes: bytes.slice(offset, offset + s.nbytes) };
    offset += s.nbytes;
    return t;
  });
  return { header, tensors, size: offset };
}

/**
 * An ONNX Runtime tensor from a decoded one (the bytes are copied into an aligned buffer).
 * @param {any} ort  onnxruntime-web or onnxruntime-node
 * @param {{dtype: string, shape: number[], bytes: Uint8Array}} t
 */
export function toOrt(ort, t) {
  const Typed = ARRAYS[t.dtype];
  if (!Typed) throw new Error(`tensor ${t.name}: dtype ${t.dtype} is not supported`);
  const copy = new Uint8Array(t.bytes.byteLength);
  copy.set(t.bytes);
  return new ort.Tensor(t.dtype, new Typed(copy.buffer, 0, copy.byteLength / Typed.BYTES_PER_ELEMENT), t.shape);
}

/**
 * The encodable form of an ONNX Runtime tensor.
 * @param {string} name
 * @param {{type: string, dims: readonly number[], data: ArrayBufferView}} tensor
 */
export function fromOrt(name, tensor) {
  const data = tensor.data;
  return {
    name, dtype: tensor.type, shape: Array.from(tensor.dims, Number),
    bytes: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  };
}
