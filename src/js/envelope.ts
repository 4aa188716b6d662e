// The values that cross between Node and the JavaScript guest (docs/javascript.md "Wire format"): JSON text plus the bytes of
// every Uint8Array, which the JSON names by a marker object. Decoding checks every length: the guest's bytes are untrusted. It does
// not run guest calls (js-sandbox.ts does).
import { GuestProtocolError } from '../sandbox/errors.js';
import { JsValueError } from './errors.js';

/** Envelope kinds: the first byte of a reply (guests/jsguest/main.c agrees). */
export const KIND = { value: 0, exception: 1, outOfMemory: 2 } as const;

/** The key of the object that stands for a byte array in the JSON text: `{"\u0000bytes": index}`. */
const MARK = '\u0000bytes';
const utf8 = new TextEncoder();
const text = new TextDecoder('utf-8', { fatal: true });

/**
 * Encodes `value` as [u8 kind][u32 JSON length][JSON][u32 blob count][u32 length, bytes]...; `undefined` is an empty text.
 * Throws JsValueError for what JSON cannot carry (a BigInt, a cycle) or a toJSON that throws.
 */
export function encodeValue(value: unknown, kind: number, what: string): Uint8Array {
  const blobs: Uint8Array[] = [];
  let json: string | undefined;
  try {
    json = JSON.stringify(value, function replacer(this: Record<string, unknown>, key: string, v: unknown): unknown {
      const original = this[key];
      if (original instanceof Uint8Array) {
        blobs.push(original);
        return { [MARK]: blobs.length - 1 };
      }
      return v;
    });
  } catch (e) {
    throw new JsValueError(`${what} cannot cross to the guest as JSON: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  const body = json === undefined ? new Uint8Array(0) : utf8.encode(json);
  let size = 1 + 4 + body.length + 4;
  for (const b of blobs) size += 4 + b.length;
  if (size > 0xffff_ffff) throw new JsValueError(`${what} is too large (${size} bytes) to cross to the guest`);
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  out[0] = kind;
  view.setUint32(1, body.length, true);
  out.set(body, 5);
  let at = 5 + body.length;
  view.setUint32(at, blobs.length, true);
  at += 4;
  for (const b of blobs) {
    view.setUint32(at, b.length, true);
    out.set(b, at + 4);
    at += 4 + b.length;
  }
  return out;
}

/** A decoded envelope: its kind and its value (for exceptions, the `{name, message, stack}` the guest described). */
export interface Decoded {
  kind: number;
  value: unknown;
}

/** Decodes an envelope from the guest. Throws GuestProtocolError for anything malformed (a hostile guest's reply). */
export function decodeValue(bytes: Uint8Array): Decoded {
  const bad = (why: string): never => { throw new GuestProtocolError(`JS guest reply: ${why}`); };
  if (bytes.length < 9) bad(`${bytes.length} bytes is shorter than an envelope`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const kind = bytes[0]!;
  if (kind !== KIND.value && kind !== KIND.exception && kind !== KIND.outOfMemory) bad(`unknown kind ${kind}`);
  const n = view.getUint32(1, true);
  if (n > bytes.length - 9) bad(`JSON length ${n} exceeds the reply`);
  let source = '';
  try {
    source = text.decode(bytes.subarray(5, 5 + n));
  } catch (e) {
    bad('JSON text is not UTF-8');
  }
  let at = 5 + n;
  const count = view.getUint32(at, true);
  at += 4;
  if (count > (bytes.length - at) / 4) bad(`blob count ${count} exceeds the reply`);
  const blobs: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    if (bytes.length - at < 4) bad('blob header cut short');
    const len = view.getUint32(at, true);
    if (len > bytes.length - at - 4) bad(`blob ${i} length ${len} exceeds the reply`);
    blobs.push(bytes.slice(at + 4, at + 4 + len));
    at += 4 + len;
  }
  if (at !== bytes.length) bad(`${bytes.length - at} trailing bytes`);
  if (n === 0) return { kind, value: undefined };
  let value: unknown;
  try {
    value = blobs.length === 0 ? JSON.parse(source) : JSON.parse(source, (_key, v: unknown) => {
      if (v !== null && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 1 &&
          typeof (v as Record<string, unknown>)[MARK] === 'number') {
        const blob = blobs[(v as Record<string, number>)[MARK]!];
        if (blob === undefined) bad('a byte-array marker names a missing blob');
        return blob;
      }
      return v;
    });
  } catch (e) {
    if (e instanceof GuestProtocolError) throw e;
    bad(`JSON text does not parse (${e instanceof Error ? e.message : String(e)})`);
  }
  return { kind, value };
}
