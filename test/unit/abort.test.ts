// Unit tests of the port-102 abort stream parser: chunking, truncation at ABORT_MAX_BYTES, exception payloads, rejections.
import { describe, expect, it } from 'vitest';
import { ABORT_CODE_EXCEPTION, ABORT_CODE_STACK_OVERFLOW, ABORT_END, ABORT_MAX_BYTES } from '../../src/sandbox/abi.js';
import { AbortStream, type AbortReport } from '../../src/sandbox/abort.js';

/** EAX words for `bytes`, `per` data bytes per chunk (as the SDK sends them), then the end marker. */
function chunks(bytes: Uint8Array | number[], per = 3): number[] {
  const out: number[] = [];
  const b = Array.from(bytes);
  for (let i = 0; i < b.length; i += per) {
    const part = b.slice(i, i + per);
    out.push((part.length | (part[0] ?? 0) << 8 | (part[1] ?? 0) << 16 | (part[2] ?? 0) << 24) >>> 0);
  }
  out.push(ABORT_END);
  return out;
}

function run(s: AbortStream, words: number[]): AbortReport {
  let report: AbortReport | undefined;
  words.forEach((w, i) => {
    const r = s.feed(w);
    if (i < words.length - 1) expect(r).toBeUndefined();
    else report = r;
  });
  expect(report).toBeDefined();
  return report!;
}

const enc = (s: string): number[] => Array.from(new TextEncoder().encode(s));
const u64 = (v: bigint): number[] => Array.from({ length: 8 }, (_, i) => Number((v >> BigInt(8 * i)) & 0xffn));
const protocolError = expect.objectContaining({ code: 'ERR_GUEST_PROTOCOL' });

describe('AbortStream', () => {
  it('a code and a message, in chunks of 1, 2 and 3 bytes', () => {
    for (const per of [1, 2, 3]) {
      const s = new AbortStream();
      expect(run(s, chunks([42, ...enc('bad state: ünïcode')], per)))
        .toEqual({ code: 42, message: 'bad state: ünïcode', truncated: false });
      expect(s.active).toBe(false);
    }
  });

  it('a code alone, empty chunks, and the upper bits of a negative EAX', () => {
    const s = new AbortStream();
    expect(run(s, [0, 0x0701, 0, ABORT_END])).toEqual({ code: 7, message: '', truncated: false });
    expect(run(s, [(0x03 | 0x41 << 8 | 0x42 << 16 | 0xe2 << 24) | 0, 0x02 | 0x80 << 8 | 0x94 << 16, ABORT_END]))
      .toEqual({ code: 0x41, message: 'B\u2014', truncated: false });
    expect(run(s, [0xffffff01 | 0, ABORT_END]).code).toBe(0xff); // n = 1, b1 = 0xff
  });

  it('keeps exactly ABORT_MAX_BYTES bytes, then truncates without growing', () => {
    const s = new AbortStream();
    const exact = run(s, chunks([1, ...new Array<number>(ABORT_MAX_BYTES - 1).fill(0x61)]));
    expect(exact.truncated).toBe(false);
    expect(exact.message).toHaveLength(ABORT_MAX_BYTES - 1);
    const long = run(s, chunks([2, ...new Array<number>(5000).fill(0x62)]));
    expect(long).toEqual({ code: 2, message: 'b'.repeat(ABORT_MAX_BYTES - 1), truncated: true });
    expect(run(s, chunks([3, ...enc('after')]))).toEqual({ code: 3, message: 'after', truncated: false });
  });

  it('keeps a leading byte-order mark in the message', () => {
    expect(run(new AbortStream(), chunks([5, 0xef, 0xbb, 0xbf, 0x78])).message).toBe('\uFEFFx');
  });

  it('replaces invalid UTF-8 instead of throwing', () => {
    const r = run(new AbortStream(), chunks([5, 0x68, 0xff, 0x69, 0xc3]));
    expect(r.message).toBe('h\ufffdi\ufffd');
  });

  it('decodes the CPU-exception and stack-overflow payloads', () => {
    const payload = (code: number, vector: number, msg: string): number[] =>
      [code, vector, ...u64(0x2n), ...u64(0xffff_8000_0000_1234n), ...u64(0xdead_beefn), ...enc(msg)];
    const s = new AbortStream();
    expect(run(s, chunks(payload(ABORT_CODE_EXCEPTION, 14, 'page fault')))).toEqual({
      code: 0xfe, message: 'page fault', truncated: false,
      exception: { vector: 14, errorCode: 2n, rip: 0xffff_8000_0000_1234n, cr2: 0xdead_beefn, stackOverflow: false },
    });
    const so = run(s, chunks(payload(ABORT_CODE_STACK_OVERFLOW, 14, '')));
    expect(so.exception).toEqual({ vector: 14, errorCode: 2n, rip: 0xffff_8000_0000_1234n, cr2: 0xdead_beefn, stackOverflow: true });
    expect(so.message).toBe('');
    const ud = run(s, chunks([0xfe, 6, ...u64(0n), ...u64(0x1000n), ...u64(0n)], 2));
    expect(ud.exception?.vector).toBe(6);
    expect(ud.exception?.rip).toBe(0x1000n);
  });

  it('rejects a short exception payload, an empty stream and bad chunk sizes', () => {
    const s = new AbortStream();
    const short = chunks([0xfe, 14, ...u64(0n), ...u64(0n), 1, 2, 3]);
    expect(() => run(s, short)).toThrow(protocolError);
    expect(() => run(s, chunks([0xfd]))).toThrow(/25-byte exception payload, got 0/);
    expect(() => s.feed(ABORT_END)).toThrow(/without an abort code/);
    for (const n of [4, 5, 0x80, 0xfe]) {
      s.feed(0x0101);
      expect(s.active).toBe(true);
      expect(() => s.feed(n | 0x4100)).toThrow(protocolError);
      expect(s.active).toBe(false); // the error also resets the stream
    }
    expect(run(s, chunks([9]))).toEqual({ code: 9, message: '', truncated: false });
  });

  it('reset drops a partial stream', () => {
    const s = new AbortStream();
    s.feed(0x03 | 0x01 << 8 | 0x41 << 16 | 0x41 << 24);
    s.reset();
    expect(run(s, chunks([8, ...enc('x')]))).toEqual({ code: 8, message: 'x', truncated: false });
  });
});
