// Mutation fuzzing of every decoder of guest data (fixed seed): each input must decode or throw GuestProtocolError, never anything else, never hang.
import * as flatbuffers from 'flatbuffers';
import { describe, expect, it } from 'vitest';
import { ABORT_MAX_BYTES } from '../../src/sandbox/abi.js';
import { decodeAbortRecord } from '../../src/sandbox/abort.js';
import { WireCodec, type DecodedFunctionCall, type FunctionCallOutcome } from '../../src/sandbox/codec.js';
import { GuestProtocolError } from '../../src/sandbox/errors.js';
import { FunctionCall } from '../../src/sandbox/fb/function-call.js';
import { FunctionCallResult } from '../../src/sandbox/fb/function-call-result.js';
import { GuestError } from '../../src/sandbox/fb/guest-error.js';
import { GuestLogData } from '../../src/sandbox/fb/guest-log-data.js';
import { hlbool } from '../../src/sandbox/fb/hlbool.js';
import { hldouble } from '../../src/sandbox/fb/hldouble.js';
import { hlfloat } from '../../src/sandbox/fb/hlfloat.js';
import { hlint } from '../../src/sandbox/fb/hlint.js';
import { hllong } from '../../src/sandbox/fb/hllong.js';
import { hlsizeprefixedbuffer } from '../../src/sandbox/fb/hlsizeprefixedbuffer.js';
import { hlstring } from '../../src/sandbox/fb/hlstring.js';
import { hluint } from '../../src/sandbox/fb/hluint.js';
import { hlulong } from '../../src/sandbox/fb/hlulong.js';
import { hlvecbytes } from '../../src/sandbox/fb/hlvecbytes.js';
import { Parameter } from '../../src/sandbox/fb/parameter.js';
import { ReturnValueBox } from '../../src/sandbox/fb/return-value-box.js';
import { popElement, pushElement, resetStack } from '../../src/sandbox/iobuf.js';
import { ParameterValue as PV, type TypedValue } from '../../src/sandbox/values.js';
import { prng } from '../helpers/prng.js';

/** Mutated inputs per decoder; docs cite these. */
export const FUZZ_INPUTS_PER_DECODER = 100_000;
export const FUZZ_SEED = 0x5eed_1e57;

const INTERESTING_U32 = [0, 1, 2, 3, 4, 7, 8, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x10000,
  0x7fffffff, 0x80000000, 0xfffffffc, 0xfffffffe, 0xffffffff];

/** Applies 1..4 random mutations to a copy of `seed`. */
function mutate(seed: Uint8Array, rnd: () => number): Uint8Array {
  let b: Uint8Array = seed.slice();
  const int = (n: number): number => Math.floor(rnd() * n);
  const rounds = 1 + int(4);
  for (let r = 0; r < rounds; r++) {
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const pos = b.length > 0 ? int(b.length) : 0;
    switch (int(9)) {
      case 0: if (b.length) b[pos] = b[pos]! ^ (1 << int(8)); break;             // bit flip
      case 1: if (b.length) b[pos] = [0, 0xff, 0x7f, 0x80, 1, int(256)][int(6)]!; break; // byte set
      case 2: if (pos + 4 <= b.length) dv.setUint32(pos, INTERESTING_U32[int(INTERESTING_U32.length)]!, true); break;
      case 3: if (pos + 4 <= b.length) dv.setInt32(pos, int(b.length * 2) - b.length, true); break; // offset in/out of range, backwards
      case 4: if (pos + 2 <= b.length) dv.setUint16(pos, [0, 2, 3, 4, 6, int(64), 0xfffe, 0x8000][int(8)]!, true); break;
      case 5: if (pos + 4 <= b.length) dv.setUint32(pos, 0, true); break;          // uoffset pointing at itself
      case 6: b = b.subarray(0, int(b.length + 1)).slice(); break;               // truncation
      case 7: {                                                                   // extension
        const ext = new Uint8Array(b.length + 1 + int(64));
        ext.set(b);
        for (let i = b.length; i < ext.length; i++) ext[i] = int(4) === 0 ? int(256) : 0;
        b = ext;
        break;
      }
      case 8: {                                                                   // splice a chunk from elsewhere
        const len = int(16);
        const from = int(Math.max(1, b.length - len));
        if (pos + len <= b.length && from + len <= b.length) b.copyWithin(pos, from, from + len);
        break;
      }
    }
  }
  // Most of the time keep the size prefix consistent so the mutation reaches the tables.
  if (b.length >= 4 && rnd() < 0.75) new DataView(b.buffer, b.byteOffset).setUint32(0, b.length - 4, true);
  return b;
}

function expectOnlyProtocolErrors(e: unknown, input: Uint8Array | number[]): void {
  if (!(e instanceof GuestProtocolError)) {
    const bytes = input instanceof Uint8Array ? input : new Uint8Array(Uint32Array.from(input).buffer);
    const hex = Buffer.from(bytes).toString('hex');
    throw new Error(`non-protocol error for input ${hex}: ${String(e)}`, { cause: e });
  }
}

// ---- seeds: our encoder (force-defaults) and the plain generated builder (defaults omitted) ----

const codec = new WireCodec();
const ALL: TypedValue[] = [
  PV.Int(-5), PV.UInt(7), PV.Long(-(2n ** 40n)), PV.ULong(2n ** 63n), PV.Float(1.5), PV.Double(-0.1),
  PV.String('héllo'), PV.Bool(true), PV.VecBytes(new Uint8Array([1, 2, 3, 4, 5])),
];
function plainBuilderCall(): Uint8Array {
  const b = new flatbuffers.Builder(64);
  const s = hlstring.createhlstring(b, b.createString('x'));
  const p0 = Parameter.createParameter(b, 7, s);
  const p1 = Parameter.createParameter(b, 1, hlint.createhlint(b, 0));
  const p2 = Parameter.createParameter(b, 9, hlvecbytes.createhlvecbytes(b, hlvecbytes.createValueVector(b, [9, 9])));
  const name = b.createString('Plain');
  const params = FunctionCall.createParametersVector(b, [p0, p1, p2]);
  b.finishSizePrefixed(FunctionCall.createFunctionCall(b, name, params, 2, 6));
  return b.asUint8Array().slice();
}
const CALL_SEEDS: Uint8Array[] = [
  codec.encodeFunctionCall('Echo', [PV.String('hi')], 'guest', 'String').slice(),
  codec.encodeFunctionCall('All', ALL, 'host', 'VecBytes').slice(),
  codec.encodeFunctionCall('', [], 'host', 'Void').slice(),
  plainBuilderCall(),
];
const RESULT_SEEDS: Uint8Array[] = [
  ...ALL.map((v) => codec.encodeFunctionCallResult({ ok: true, value: v }).slice()),
  codec.encodeFunctionCallResult({ ok: true, value: undefined }).slice(),
  codec.encodeFunctionCallResult({ ok: false, code: 17, message: 'host error ✗' }).slice(),
];
const LOG_SEEDS: Uint8Array[] = [
  codec.encodeGuestLogData({ message: 'log line', source: 'guest', level: 2, caller: 'fn', sourceFile: 'a.c', line: 42 }).slice(),
  codec.encodeGuestLogData({ message: '', source: '', level: 0, caller: '', sourceFile: '', line: 0 }).slice(),
];

// ---- the generated accessors must agree with every input the verifier accepts ----

function genParam(p: Parameter): unknown {
  switch (p.valueType()) {
    case 1: return (p.value(new hlint()) as hlint).value();
    case 2: return (p.value(new hluint()) as hluint).value();
    case 3: return (p.value(new hllong()) as hllong).value();
    case 4: return (p.value(new hlulong()) as hlulong).value();
    case 5: return (p.value(new hlfloat()) as hlfloat).value();
    case 6: return (p.value(new hldouble()) as hldouble).value();
    case 7: return (p.value(new hlstring()) as hlstring).value() ?? '';
    case 8: return (p.value(new hlbool()) as hlbool).value();
    case 9: return (p.value(new hlvecbytes()) as hlvecbytes).valueArray() ?? new Uint8Array(0);
    default: return Symbol('bad tag');
  }
}
function sameValue(a: unknown, b: unknown): boolean {
  if (a instanceof Uint8Array && b instanceof Uint8Array) return Buffer.from(a).equals(Buffer.from(b));
  return Object.is(a, b);
}
function agreesWithGenerated(bytes: Uint8Array, d: DecodedFunctionCall): boolean {
  const fc = FunctionCall.getSizePrefixedRootAsFunctionCall(new flatbuffers.ByteBuffer(bytes));
  if (fc.functionName() !== d.name || fc.parametersLength() !== d.args.length) return false;
  for (let i = 0; i < d.args.length; i++) {
    if (!sameValue(genParam(fc.parameters(i)!), d.args[i]!.value)) return false;
  }
  return true;
}
function resultAgreesWithGenerated(bytes: Uint8Array, r: FunctionCallOutcome): boolean {
  const fr = FunctionCallResult.getSizePrefixedRootAsFunctionCallResult(new flatbuffers.ByteBuffer(bytes));
  if (!r.ok) {
    const ge = fr.result(new GuestError()) as GuestError;
    return BigInt(r.code) === ge.code() && r.message === (ge.message() ?? '');
  }
  const box = fr.result(new ReturnValueBox()) as ReturnValueBox;
  const tag = box.valueType();
  if (tag === 9) return r.value === undefined;
  if (tag === 10) {
    const spb = box.value(new hlsizeprefixedbuffer()) as hlsizeprefixedbuffer;
    return sameValue(spb.valueArray() ?? new Uint8Array(0), r.value?.value) && spb.size() === (spb.valueLength());
  }
  // ReturnValue tags 1..8 match ParameterValue tags 1..8: read through a Parameter-shaped adapter.
  const adapter = { valueType: () => tag, value: <T>(o: T) => box.value(o as never) as T } as unknown as Parameter;
  return sameValue(genParam(adapter), r.value?.value);
}

function fuzzDecoder<T>(seeds: Uint8Array[], decode: (b: Uint8Array) => T, agree: (b: Uint8Array, v: T) => boolean, seed: number): { accepted: number; rejected: number } {
  const rnd = prng(seed);
  let accepted = 0;
  let rejected = 0;
  for (let i = 0; i < FUZZ_INPUTS_PER_DECODER; i++) {
    const input = mutate(seeds[i % seeds.length]!, rnd);
    // Decode the input in place inside a larger "guest memory" with garbage around it, as the
    // sandbox does: a read outside the input would then return garbage rather than throw, and
    // show up as a disagreement with the generated accessors (which see only the input).
    const memory = new Uint8Array(input.length + 64).fill(0xa5);
    memory.set(input, 32);
    let out: T;
    try {
      out = decode(memory.subarray(32, 32 + input.length));
    } catch (e) {
      expectOnlyProtocolErrors(e, input);
      rejected++;
      continue;
    }
    accepted++;
    if (!agree(input, out)) throw new Error(`generated accessors disagree on ${Buffer.from(input).toString('hex')}`);
  }
  return { accepted, rejected };
}

const TIMEOUT = 60_000;

describe(`decoder fuzzing (seed 0x${FUZZ_SEED.toString(16)}, ${FUZZ_INPUTS_PER_DECODER} inputs each)`, () => {
  it(`decodeFunctionCall: ${FUZZ_INPUTS_PER_DECODER} mutated inputs decode or throw GuestProtocolError`, () => {
    const c = new WireCodec();
    const { accepted, rejected } = fuzzDecoder(CALL_SEEDS, (b) => c.decodeFunctionCall(b), agreesWithGenerated, FUZZ_SEED);
    expect(accepted + rejected).toBe(FUZZ_INPUTS_PER_DECODER);
    expect(accepted).toBeGreaterThan(1000); // the mutations do reach valid-but-different inputs
    expect(rejected).toBeGreaterThan(1000);
  }, TIMEOUT);

  it(`decodeFunctionCallResult: ${FUZZ_INPUTS_PER_DECODER} mutated inputs decode or throw GuestProtocolError`, () => {
    const c = new WireCodec();
    const { accepted, rejected } = fuzzDecoder(RESULT_SEEDS, (b) => c.decodeFunctionCallResult(b), resultAgreesWithGenerated, FUZZ_SEED + 1);
    expect(accepted).toBeGreaterThan(1000);
    expect(rejected).toBeGreaterThan(1000);
  }, TIMEOUT);

  it(`decodeGuestLogData: ${FUZZ_INPUTS_PER_DECODER} mutated inputs decode or throw GuestProtocolError`, () => {
    const c = new WireCodec();
    const { accepted, rejected } = fuzzDecoder(LOG_SEEDS, (b) => c.decodeGuestLogData(b), (b, log) => {
      const g = GuestLogData.getSizePrefixedRootAsGuestLogData(new flatbuffers.ByteBuffer(b));
      return (g.message() ?? '') === log.message && (g.source() ?? '') === log.source && g.level() === log.level &&
        (g.caller() ?? '') === log.caller && (g.sourceFile() ?? '') === log.sourceFile && g.line() === log.line;
    }, FUZZ_SEED + 2);
    expect(accepted).toBeGreaterThan(1000);
    expect(rejected).toBeGreaterThan(1000);
  }, TIMEOUT);

  it(`abort records: ${FUZZ_INPUTS_PER_DECODER} random records and claimed lengths decode or throw GuestProtocolError`, () => {
    const rnd = prng(FUZZ_SEED + 3);
    const int = (n: number): number => Math.floor(rnd() * n);
    let reports = 0;
    let errors = 0;
    for (let i = 0; i < FUZZ_INPUTS_PER_DECODER; i++) {
      const len = int(20) === 0 ? int(1 + ABORT_MAX_BYTES + 1) : int(24);
      const record = new Uint8Array(len);
      for (let k = 0; k < len; k++) record[k] = int(256);
      const claimed = int(4) === 0 ? int(0x1_0000_0000) : len;
      try {
        const report = decodeAbortRecord(record, claimed);
        reports++;
        // Each kept byte yields at most one UTF-16 unit; the code byte is not in the message.
        if (report.message.length > ABORT_MAX_BYTES || report.code !== record[0] ||
            report.truncated !== claimed > 1 + ABORT_MAX_BYTES) {
          throw new Error(`bad report ${JSON.stringify(report)} for ${len} bytes claiming ${claimed}`);
        }
      } catch (e) {
        expect(e).toBeInstanceOf(GuestProtocolError);
        errors++;
      }
    }
    expect(reports).toBeGreaterThan(1000);
    expect(errors).toBeGreaterThan(100);
  }, TIMEOUT);

  it(`popElement: ${FUZZ_INPUTS_PER_DECODER} corrupted buffers pop within bounds or throw GuestProtocolError`, () => {
    const rnd = prng(FUZZ_SEED + 4);
    const int = (n: number): number => Math.floor(rnd() * n);
    const mem = new Uint8Array(0x400);
    const view = new DataView(mem.buffer);
    const elements = [1, 0, 7, 30, 3].map((n) => {
      const e = new Uint8Array(4 + n).fill(0x5a);
      new DataView(e.buffer).setUint32(0, n, true);
      return e;
    });
    let pops = 0;
    let errors = 0;
    for (let i = 0; i < FUZZ_INPUTS_PER_DECODER; i++) {
      const off = 0x40 + int(0x40);
      const size = 0x20 + int(0x200);
      mem.fill(0);
      resetStack(mem, view, off, size);
      const count = int(5);
      for (let k = 0; k < count; k++) {
        try { pushElement(mem, view, off, size, elements[int(elements.length)]!); } catch { break; }
      }
      const sp = Number(view.getBigUint64(off, true));
      const flips = 1 + int(3);
      for (let k = 0; k < flips; k++) {
        const m = int(4);
        if (m === 0) view.setUint32(off + int(Math.max(1, sp)), INTERESTING_U32[int(INTERESTING_U32.length)]!, true);
        else if (m === 1) view.setUint32(off, int(size + 32), true);
        else if (m === 2 && sp >= 16) view.setUint32(off + sp - 8 - int(4), int(sp + 16), true);
        else { const p = off + int(size); mem[p] = mem[p]! ^ (1 << int(8)); }
      }
      // Each successful pop lowers sp by at least 12, so this loop must end within size / 12 pops.
      for (let k = 0; k <= size / 12 + 1; k++) {
        const before = view.getUint32(off, true);
        try {
          const e = popElement(mem, view, off, size);
          pops++;
          if (e.byteOffset < off + 8 || e.byteOffset + e.length > off + before - 8 || view.getUint32(off, true) > before - 12) {
            throw new Error(`pop escaped its bounds: element ${e.byteOffset}+${e.length}, sp ${before}, region ${off}+${size}`);
          }
        } catch (err) {
          expectOnlyProtocolErrors(err, mem.subarray(off, off + size));
          errors++;
          break;
        }
        if (k === Math.floor(size / 12) + 1) throw new Error('popElement did not stop');
      }
    }
    expect(pops).toBeGreaterThan(1000);
    expect(errors).toBeGreaterThan(1000);
  }, TIMEOUT);
});
