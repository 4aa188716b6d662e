// The host side of the exitless mailbox on plain memory: command words, the guest's word, and the output copier's copy-once pops (what a guest racing the host cannot change).
import { describe, expect, it } from 'vitest';
import { HostMailbox, OutputCopier } from '../../src/exitless/mailbox.js';
import {
  MB_CMD_CALL, MB_CMD_PARK, MB_OFF_GUEST_ARG, MB_OFF_GUEST_WORD, MB_OFF_HOST_WORD, MB_OFF_SPIN_TICKS, MB_OFF_WAITING,
  OP_HALT,
} from '../../src/sandbox/abi.js';
import { GuestProtocolError } from '../../src/sandbox/errors.js';
import { pushElement, resetStack } from '../../src/sandbox/iobuf.js';

describe('HostMailbox', () => {
  const mem = new Uint8Array(3 * 4096);
  const view = new DataView(mem.buffer);
  const mb = new HostMailbox(mem, 4096);

  it('reset writes the spin budget and zeroes the page', () => {
    mem.fill(0xee, 4096, 8192);
    mb.reset(2 ** 33 + 5);
    expect(view.getBigUint64(4096 + MB_OFF_SPIN_TICKS, true)).toBe(2n ** 33n + 5n);
    expect(view.getUint32(4096 + MB_OFF_HOST_WORD, true)).toBe(0);
    expect(mem[8191]).toBe(0);
    expect(mem[4095]).toBe(0); // nothing outside the page
  });

  it('posts seq << 4 | command, one new seq per command', () => {
    mb.reset(0);
    mb.post(MB_CMD_CALL);
    expect(view.getUint32(4096 + MB_OFF_HOST_WORD, true)).toBe((1 << 4) | MB_CMD_CALL);
    mb.post(MB_CMD_PARK);
    expect(view.getUint32(4096 + MB_OFF_HOST_WORD, true)).toBe((2 << 4) | MB_CMD_PARK);
  });

  it('poll reports each new guest word once; a zero word is op 0, never "nothing"', () => {
    mb.reset(0);
    expect(mb.poll()).toBe(0);
    view.setUint32(4096 + MB_OFF_GUEST_WORD, (1 << 8) | OP_HALT, true);
    view.setUint32(4096 + MB_OFF_GUEST_ARG, 0x1234, true);
    expect(mb.poll()).toBe((1 << 8) | OP_HALT);
    expect(mb.argLow()).toBe(0x1234);
    expect(mb.poll()).toBe(0);
    view.setUint32(4096 + MB_OFF_GUEST_WORD, 0, true);
    expect(mb.poll() & 0xff).toBe(0);
  });

  it('resync takes the sequence numbers from memory (after a restore)', () => {
    view.setUint32(4096 + MB_OFF_HOST_WORD, (41 << 4) | MB_CMD_PARK, true);
    view.setUint32(4096 + MB_OFF_GUEST_WORD, (9 << 8) | OP_HALT, true);
    mb.resync();
    expect(mb.poll()).toBe(0);
    mb.post(MB_CMD_CALL);
    expect(view.getUint32(4096 + MB_OFF_HOST_WORD, true)).toBe((42 << 4) | MB_CMD_CALL);
    mb.setWaiting(true);
    expect(view.getUint32(4096 + MB_OFF_WAITING, true)).toBe(1);
  });
});

describe('OutputCopier: one copy, then checks on the copy', () => {
  const mem = new Uint8Array(0x4000);
  const view = new DataView(mem.buffer);
  const out = { gpa: 0x1000, size: 0x2000 };

  function pushed(bytes: number[]): void {
    resetStack(mem, view, out.gpa, out.size);
    const el = new Uint8Array(4 + bytes.length);
    new DataView(el.buffer).setUint32(0, bytes.length, true);
    el.set(bytes, 4);
    pushElement(mem, view, out.gpa, out.size, el);
  }

  it('pops the top element from a copy the guest can no longer change, and writes the popped sp back', () => {
    pushed([1, 2, 3, 4, 5]);
    const copier = new OutputCopier(mem, view, out.gpa, out.size);
    const el = copier.pop();
    expect([...el]).toEqual([5, 0, 0, 0, 1, 2, 3, 4, 5]);
    mem.fill(0xff, out.gpa + 8, out.gpa + 32); // the guest rewrites the element after the copy
    expect([...el]).toEqual([5, 0, 0, 0, 1, 2, 3, 4, 5]);
    expect(view.getUint32(out.gpa, true)).toBe(8); // popped in guest memory too
    expect(copier.high).toBeGreaterThan(8);
  });

  it('checks the stack pointer it read once, not a value the guest writes later', () => {
    const copier = new OutputCopier(mem, view, out.gpa, out.size);
    view.setUint32(out.gpa, out.size + 8, true);
    expect(() => copier.pop()).toThrow(GuestProtocolError);
    view.setUint32(out.gpa, 16, true);
    view.setUint32(out.gpa + 4, 1, true); // above 2^32
    expect(() => copier.pop()).toThrow(GuestProtocolError);
    view.setUint32(out.gpa + 4, 0, true);
    view.setBigUint64(out.gpa + 8, 0xffff_ffffn, true); // back-pointer out of range
    expect(() => copier.pop()).toThrow(GuestProtocolError);
  });
});
