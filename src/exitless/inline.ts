// Inline messages of the mailbox page (docs/exitless.md "Inline messages"): a call, host call or result of scalars or short Strings, as a 40-byte record in the line of the word that announces it and a name line; encode and decode only, no thread or call logic.
import {
  MB_FEATURE_INLINE, MB_NAME_MAX, MB_OFF_GUEST_FEATURES, MB_OFF_GUEST_NAME, MB_OFF_GUEST_RECORD, MB_OFF_HOST_FEATURES,
  MB_OFF_HOST_NAME, MB_OFF_HOST_RECORD, MB_REC_MAX_PARAMS, MB_REC_OFF_COUNT, MB_REC_OFF_NAME_LEN, MB_REC_OFF_PTYPES,
  MB_REC_OFF_TYPE, MB_REC_OFF_VALUES,
} from '../sandbox/abi.js';
import { GuestProtocolError } from '../sandbox/errors.js';
import type { ParameterTypeName, ReturnTypeName, TypedValue } from '../sandbox/values.js';
import { PARAM_TAG_TYPES, RETURN_ENUM_TYPES, returnTypeCode } from '../sandbox/wire-writer.js';

/**
 * The type codes a record carries (hl_ParameterType / ReturnType): the scalars, and String
 * (its length in the value, its bytes in the name line after the name); Void only as a value.
 */
const INLINE: Readonly<Record<string, number>> = { Int: 0, UInt: 1, Long: 2, ULong: 3, Float: 4, Double: 5, String: 6, Bool: 7 };
const VOID_CODE = returnTypeCode('Void');
const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }); // as the codec's

/** A host call read from the guest record: valid until the next read (its objects are reused). */
export interface InlineHostCall {
  name: string;
  args: TypedValue[];
}

/**
 * One sandbox's inline records. The guest may rewrite its record and name at any time: each
 * field is read exactly once, the name's bytes are copied out once, and what is checked is
 * what is used.
 */
export class InlineRecords {
  readonly #mem: Buffer;
  readonly #view: DataView;
  readonly #base: number;
  /** The name bytes of each call name the host sent (a few names per sandbox). */
  readonly #names = new Map<string, Uint8Array>();
  /** What the host name line holds (its first #lineLength bytes; -1: unknown): only changed bytes are written. */
  readonly #line = new Uint8Array(MB_NAME_MAX);
  #lineLength = -1;
  /** The bytes a call or value puts in the host name line, assembled before they are compared with #line. */
  readonly #next = new Uint8Array(MB_NAME_MAX);
  /** Each String parameter's UTF-8 length, as writeCall encodes them. */
  readonly #lengths = new Uint32Array(MB_REC_MAX_PARAMS);
  /** The last host function name read, and its bytes: a repeated name is not decoded again. */
  #lastName = '';
  readonly #lastBytes = new Uint8Array(MB_NAME_MAX);
  #lastLength = -1;
  readonly #scratch = new Uint8Array(MB_NAME_MAX);
  /** Reused argument objects, one array per count. */
  readonly #args: { type: ParameterTypeName; value: unknown }[][] =
    Array.from({ length: MB_REC_MAX_PARAMS + 1 }, (_, n) => Array.from({ length: n }, () => ({ type: 'Int' as ParameterTypeName, value: 0 as unknown })));
  readonly #call: InlineHostCall = { name: '', args: [] };

  /** `memory`: the guest memory; `gpa`: the mailbox page. */
  constructor(memory: Uint8Array, gpa: number) {
    this.#mem = Buffer.from(memory.buffer, memory.byteOffset, memory.byteLength);
    this.#view = new DataView(memory.buffer, memory.byteOffset + gpa, 4096);
    this.#base = gpa;
  }

  /** Says that the host takes inline messages (written at each mailbox reset). */
  announce(): void {
    this.#view.setUint32(MB_OFF_HOST_FEATURES, MB_FEATURE_INLINE, true);
    this.#lineLength = -1;
  }

  /** Whether the guest said it understands inline messages (read once by the caller, at start-up). */
  guestTakesInline(): boolean {
    return (this.#view.getUint32(MB_OFF_GUEST_FEATURES, true) & MB_FEATURE_INLINE) !== 0;
  }

  /** The host name line is no longer known to hold the last name (a restore put the page back). */
  forgetName(): void {
    this.#lineLength = -1;
  }

  /**
   * Writes guest call `name(params)` into the host record, if it fits one (at most 4 scalar
   * or String parameters, the name and the strings together at most 120 UTF-8 bytes); false
   * (nothing written) otherwise. `params` are checked TypedValues.
   */
  writeCall(name: string, params: readonly TypedValue[], returnType: ReturnTypeName): boolean {
    if (params.length > MB_REC_MAX_PARAMS) return false;
    let nameBytes = this.#names.get(name);
    if (nameBytes === undefined) {
      nameBytes = utf8.encode(name);
      if (nameBytes.length === 0 || nameBytes.length > MB_NAME_MAX) return false;
      if (this.#names.size >= 64) this.#names.clear();
      this.#names.set(name, nameBytes);
    }
    this.#next.set(nameBytes);
    let used = nameBytes.length;
    for (let i = 0; i < params.length; i++) {
      const p = params[i]!;
      if (INLINE[p.type] === undefined) return false;
      if (p.type === 'String') {
        const written = this.#encode(p.value, used);
        if (written < 0) return false;
        this.#lengths[i] = written;
        used += written;
      }
    }
    this.#putLine(used);
    const v = this.#view;
    const r = MB_OFF_HOST_RECORD;
    v.setUint8(r + MB_REC_OFF_NAME_LEN, nameBytes.length);
    v.setUint8(r + MB_REC_OFF_COUNT, params.length);
    v.setUint8(r + MB_REC_OFF_TYPE, returnTypeCode(returnType));
    for (let i = 0; i < params.length; i++) {
      const p = params[i]!;
      v.setUint8(r + MB_REC_OFF_PTYPES + i, INLINE[p.type]!);
      if (p.type === 'String') {
        v.setUint32(r + MB_REC_OFF_VALUES + 8 * i, this.#lengths[i]!, true);
        v.setUint32(r + MB_REC_OFF_VALUES + 8 * i + 4, 0, true);
      } else {
        writeScalar(v, r + MB_REC_OFF_VALUES + 8 * i, p);
      }
    }
    return true;
  }

  /**
   * Writes a host function's result into the host record when it is a scalar, Void or a
   * String of at most 120 UTF-8 bytes; false (nothing written) otherwise (a VecBytes or a
   * longer String goes as a FunctionCallResult).
   */
  writeValue(value: TypedValue | undefined): boolean {
    const r = MB_OFF_HOST_RECORD;
    if (value === undefined) {
      this.#view.setUint8(r + MB_REC_OFF_TYPE, VOID_CODE);
      return true;
    }
    const code = INLINE[value.type];
    if (code === undefined) return false;
    if (value.type === 'String') {
      const written = this.#encode(value.value, 0);
      if (written < 0) return false;
      this.#putLine(written);
      this.#view.setUint32(r + MB_REC_OFF_VALUES, written, true);
      this.#view.setUint32(r + MB_REC_OFF_VALUES + 4, 0, true);
    } else {
      writeScalar(this.#view, r + MB_REC_OFF_VALUES, value);
    }
    this.#view.setUint8(r + MB_REC_OFF_TYPE, code);
    return true;
  }

  /** Encodes `s` into #next at `at`: its UTF-8 length, or -1 when it does not fit in the line. */
  #encode(s: string, at: number): number {
    if (s.length > MB_NAME_MAX - at) return -1; // UTF-8 has at least one byte per UTF-16 unit
    const { read, written } = utf8.encodeInto(s, at === 0 ? this.#next : this.#next.subarray(at));
    return read === s.length ? written : -1;
  }

  /** Puts #next[0, n) in the host name line, writing only the bytes that differ (an unchanged line stays in the guest's cache). */
  #putLine(n: number): void {
    const line = this.#line;
    const next = this.#next;
    const at = this.#base + MB_OFF_HOST_NAME;
    const known = this.#lineLength;
    for (let i = 0; i < n; i++) {
      const b = next[i]!;
      if (i >= known || line[i] !== b) {
        this.#mem[at + i] = b;
        line[i] = b;
      }
    }
    if (n > known) this.#lineLength = n;
  }

  /** The host call in the guest record, checked (GuestProtocolError when malformed). */
  readHostCall(): InlineHostCall {
    const v = this.#view;
    const r = MB_OFF_GUEST_RECORD;
    const len = v.getUint8(r + MB_REC_OFF_NAME_LEN);
    const count = v.getUint8(r + MB_REC_OFF_COUNT);
    if (len === 0 || len > MB_NAME_MAX) throw new GuestProtocolError(`inline host call with a ${len}-byte name (1-${MB_NAME_MAX})`);
    if (count > MB_REC_MAX_PARAMS) throw new GuestProtocolError(`inline host call with ${count} parameters (at most ${MB_REC_MAX_PARAMS})`);
    const args = this.#args[count]!;
    let used = len; // the name, then each String's bytes, in the guest name line
    for (let i = 0; i < count; i++) {
      const code = v.getUint8(r + MB_REC_OFF_PTYPES + i);
      const type = PARAM_TAG_TYPES[code];
      if (type === undefined || INLINE[type] === undefined) {
        throw new GuestProtocolError(`inline host call parameter ${i} has type code ${code}, not a scalar or String`);
      }
      const a = args[i]!;
      a.type = type;
      if (type === 'String') {
        const n = v.getUint32(r + MB_REC_OFF_VALUES + 8 * i, true);
        if (n > MB_NAME_MAX - used) throw new GuestProtocolError(`inline host call strings run past the ${MB_NAME_MAX}-byte name line`);
        a.value = n; // its length, until the line is copied below
        used += n;
      } else {
        a.value = readScalar(v, r + MB_REC_OFF_VALUES + 8 * i, type);
      }
    }
    const s = this.#copyLine(used);
    const call = this.#call;
    call.name = this.#name(s, len);
    let at = len;
    for (let i = 0; i < count; i++) {
      const a = args[i]!;
      if (a.type !== 'String') continue;
      const n = a.value as number;
      a.value = decodeUtf8(s, at, n, 'inline host call string');
      at += n;
    }
    call.args = args as TypedValue[];
    return call;
  }

  /** The value in the guest record (a guest call's result), checked. */
  readValue(): { type: ReturnTypeName; value: TypedValue['value'] | undefined } {
    const v = this.#view;
    const code = v.getUint8(MB_OFF_GUEST_RECORD + MB_REC_OFF_TYPE);
    const type = RETURN_ENUM_TYPES[code];
    if (type === undefined || (type !== 'Void' && INLINE[type] === undefined)) {
      throw new GuestProtocolError(`inline result of type code ${code}, not a scalar, String or Void`);
    }
    if (type === 'Void') return { type, value: undefined };
    if (type === 'String') {
      const n = v.getUint32(MB_OFF_GUEST_RECORD + MB_REC_OFF_VALUES, true);
      if (n > MB_NAME_MAX) throw new GuestProtocolError(`inline String result of ${n} bytes (at most ${MB_NAME_MAX})`);
      return { type, value: decodeUtf8(this.#copyLine(n), 0, n, 'inline String result') };
    }
    return { type, value: readScalar(v, MB_OFF_GUEST_RECORD + MB_REC_OFF_VALUES, type as ParameterTypeName) as TypedValue['value'] };
  }

  /** The guest name line's first `n` bytes, copied out once (valid until the next copy). */
  #copyLine(n: number): Uint8Array {
    const at = this.#base + MB_OFF_GUEST_NAME;
    this.#mem.copy(this.#scratch, 0, at, at + n);
    return this.#scratch;
  }

  /** The name in the copied line's first `len` bytes: a repeated name is not decoded again. */
  #name(s: Uint8Array, len: number): string {
    if (len === this.#lastLength) {
      let same = true;
      for (let i = 0; i < len; i++) if (s[i] !== this.#lastBytes[i]) { same = false; break; }
      if (same) return this.#lastName;
    }
    const name = decodeUtf8(s, 0, len, 'inline host call name');
    this.#lastBytes.set(s.subarray(0, len));
    this.#lastLength = len;
    this.#lastName = name;
    return name;
  }
}

function decodeUtf8(bytes: Uint8Array, at: number, n: number, what: string): string {
  try {
    return utf8Decoder.decode(bytes.subarray(at, at + n));
  } catch {
    throw new GuestProtocolError(`${what} is not UTF-8`);
  }
}

function writeScalar(v: DataView, at: number, p: TypedValue): void {
  switch (p.type) {
    case 'Int': v.setInt32(at, p.value, true); v.setUint32(at + 4, 0, true); break;
    case 'UInt': v.setUint32(at, p.value, true); v.setUint32(at + 4, 0, true); break;
    case 'Float': v.setFloat32(at, p.value, true); v.setUint32(at + 4, 0, true); break;
    case 'Bool': v.setUint32(at, p.value ? 1 : 0, true); v.setUint32(at + 4, 0, true); break;
    case 'Double': v.setFloat64(at, p.value, true); break;
    case 'Long': v.setBigInt64(at, p.value, true); break;
    case 'ULong': v.setBigUint64(at, p.value, true); break;
    default: throw new TypeError(`not a scalar: ${p.type}`);
  }
}

function readScalar(v: DataView, at: number, type: ParameterTypeName): number | bigint | boolean {
  switch (type) {
    case 'Int': return v.getInt32(at, true);
    case 'UInt': return v.getUint32(at, true);
    case 'Float': return v.getFloat32(at, true);
    case 'Bool': return v.getUint32(at, true) !== 0;
    case 'Double': return v.getFloat64(at, true);
    case 'Long': return v.getBigInt64(at, true);
    default: return v.getBigUint64(at, true);
  }
}
