// Unit tests of the I/O buffer stacks on a plain Uint8Array: push/pop order, layout, and every rejection of guest-written pointers.
import { describe, expect, it } from 'vitest';
import { IOBUF_EMPTY_SP } from '../../src/sandbox/abi.js';
import { popElement, pushElement, readStackPointer, resetStack } from '../../src/sandbox/iobuf.js';

const OFF = 0x100;
const SIZE = 0x200;
const protocolError = expect.objectContaining({ code: 'ERR_GUEST_PROTOCOL' });

function setup(): { mem: Uint8Array; view: DataView; args: [Uint8Array, DataView, number, number] } {
  const mem = new Uint8Array(0x400).fill(0xcc);
  const view = new DataView(mem.buffer);
  resetStack(mem, view, OFF, SIZE);
  return { mem, view, args: [mem, view, OFF, SIZE] };
}

/** A size-prefixed element of `n` payload bytes (value i+seed). */
function element(n: number, seed = 0): Uint8Array {
  const e = new Uint8Array(4 + n);
  new DataView(e.buffer).setUint32(0, n, true);
  for (let i = 0; i < n; i++) e[4 + i] = (i + seed) & 0xff;
  return e;
}

describe('I/O buffer stack', () => {
  it('reset writes sp = 8 as a u64', () => {
    const { view, args } = setup();
    expect(view.getBigUint64(OFF, true)).toBe(8n);
    expect(readStackPointer(...args)).toBe(IOBUF_EMPTY_SP);
  });

  it('push lays out element, back-pointer, new sp', () => {
    const { mem, view, args } = setup();
    const e = element(5, 1);
    pushElement(...args, e);
    expect(mem.subarray(OFF + 8, OFF + 8 + 9)).toEqual(e);
    expect(view.getBigUint64(OFF + 8 + 9, true)).toBe(8n);
    expect(view.getBigUint64(OFF, true)).toBe(BigInt(8 + 9 + 8));
    expect(mem[OFF - 1]).toBe(0xcc); // nothing written before the region
  });

  it('pops in LIFO order and returns views of guest memory', () => {
    const { mem, args } = setup();
    const a = element(3, 10); const b = element(0); const c = element(40, 99);
    pushElement(...args, a); pushElement(...args, b); pushElement(...args, c);
    const pc = popElement(...args);
    expect(pc).toEqual(c);
    expect(pc.buffer).toBe(mem.buffer);
    expect(popElement(...args)).toEqual(b);
    expect(popElement(...args)).toEqual(a);
    expect(readStackPointer(...args)).toBe(8);
    expect(() => popElement(...args)).toThrow(/empty/);
  });

  it('fills the region exactly, then overflows with ERR_BUFFER_OVERFLOW', () => {
    const { args } = setup();
    const e = element(SIZE - 8 - 8 - 4);
    pushElement(...args, e);
    expect(readStackPointer(...args)).toBe(SIZE);
    expect(popElement(...args)).toEqual(e);
    pushElement(...args, element(10));
    expect(() => pushElement(...args, element(SIZE)))
      .toThrow(expect.objectContaining({ code: 'ERR_BUFFER_OVERFLOW', needed: SIZE + 12, available: SIZE - 30 }));
    expect(readStackPointer(...args)).toBe(30); // a failed push changes nothing
  });

  it('rejects regions outside guest memory (host error)', () => {
    const { mem, view } = setup();
    const bounds = expect.objectContaining({ code: 'ERR_GUEST_MEMORY_BOUNDS' });
    expect(() => resetStack(mem, view, 0x300, 0x101)).toThrow(bounds);
    expect(() => resetStack(mem, view, -1, 0x10)).toThrow(bounds);
    expect(() => popElement(mem, view, 0, 4)).toThrow(bounds);
  });

  describe('guest-written values it rejects (GuestProtocolError, sp unchanged)', () => {
    const cases: [string, (view: DataView) => void, RegExp][] = [
      ['sp below 8', (v) => v.setBigUint64(OFF, 7n, true), /stack pointer 7/],
      ['sp above the region', (v) => v.setBigUint64(OFF, BigInt(SIZE + 1), true), /stack pointer 513/],
      ['sp above 2^53', (v) => v.setBigUint64(OFF, 1n << 60n, true), /exceeds 2\^53/],
      ['sp too small for an element', (v) => v.setBigUint64(OFF, 19n, true), /no room/],
      ['back-pointer below 8', (v) => { v.setBigUint64(OFF, 40n, true); v.setBigUint64(OFF + 32, 4n, true); }, /back-pointer 4/],
      ['back-pointer past sp - 12', (v) => { v.setBigUint64(OFF, 40n, true); v.setBigUint64(OFF + 32, 29n, true); }, /back-pointer 29/],
      ['back-pointer pointing at itself', (v) => { v.setBigUint64(OFF, 40n, true); v.setBigUint64(OFF + 32, 32n, true); }, /back-pointer 32/],
      ['back-pointer above 2^53', (v) => { v.setBigUint64(OFF, 40n, true); v.setBigUint64(OFF + 32, 2n ** 64n - 1n, true); }, /exceeds 2\^53/],
      ['size prefix past the back-pointer', (v) => {
        v.setBigUint64(OFF, 40n, true); v.setBigUint64(OFF + 32, 8n, true); v.setUint32(OFF + 8, 21, true);
      }, /claims 21 bytes but only 20/],
      ['size prefix 0xffffffff', (v) => {
        v.setBigUint64(OFF, 40n, true); v.setBigUint64(OFF + 32, 8n, true); v.setUint32(OFF + 8, 0xffffffff, true);
      }, /claims 4294967295/],
    ];
    it.each(cases)('%s', (_name, corrupt, msg) => {
      const { view, args } = setup();
      corrupt(view);
      const before = view.getBigUint64(OFF, true);
      expect(() => popElement(...args)).toThrow(protocolError);
      expect(() => popElement(...args)).toThrow(msg);
      expect(view.getBigUint64(OFF, true)).toBe(before);
    });

    it('a bad sp also stops a host push', () => {
      const { view, args } = setup();
      view.setBigUint64(OFF, BigInt(SIZE + 8), true);
      expect(() => pushElement(...args, element(1))).toThrow(protocolError);
    });

    it('accepts an element shorter than the space before the back-pointer', () => {
      const { view, args } = setup();
      view.setBigUint64(OFF, 40n, true); view.setBigUint64(OFF + 32, 8n, true); view.setUint32(OFF + 8, 2, true);
      expect(popElement(...args)).toHaveLength(6);
      expect(readStackPointer(...args)).toBe(8);
    });
  });
});
