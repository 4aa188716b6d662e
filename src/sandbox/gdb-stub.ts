// The gdb remote stub (SandboxConfig.debug.gdbPort): gdb's remote serial protocol on 127.0.0.1, served on the vCPU's own thread through blocking sockets while the guest is stopped (at the start of the first call, at an int3 breakpoint, after a single step, at a fault). Registers, memory through the host-built page tables, continue, single-step by RFLAGS.TF, software breakpoints. See docs/debugging.md.
import { ConfigInvalidError } from '../errors.js';
import { acceptBlocking, close as closeFd, listenLoopback, recvBlocking, sendAll } from '../kvm/libc.js';
import { SyscallError } from '../kvm/libc.js';
import { walk } from '../mem/x86_64/index.js';
import {
  EXCEPTION_FRAME_SIZE, FRAME_OFF_RAX, FRAME_OFF_RFLAGS, FRAME_OFF_RIP, FRAME_OFF_VECTOR, RFLAGS_RESERVED_1,
  SEL_USER_CODE, SYSCALL_RESUME, readExceptionFrame,
} from '../x86_64/index.js';
import { signalOfVector } from './crash-dump.js';
import { ExecutionCanceledError } from './errors.js';
import type { Machine } from './machine.js';
import { hostBytes, hostView } from '../mem/guest-memory.js';

/** RFLAGS.TF: trap after the next instruction (#DB). */
export const RFLAGS_TF = 0x100n;
/** The flags gdb may set in the guest: ring 3's own (CF PF AF ZF SF DF OF AC) and TF. */
const DEBUG_RFLAGS = 0x40cd5n | RFLAGS_TF;
const FRAME_OFF_RSP = 56;
const VECTOR_DB = 1;
const VECTOR_BP = 3;
const SIGTRAP = 5;
/** Largest memory read or write one packet serves (PacketSize below is in characters). */
const MAX_MEMORY_PACKET = 4096;
const PACKET_SIZE = 0x4000;
const EADDRINUSE = 98;

/** The general registers in the order of gdb's amd64 core feature (target.xml below). */
const GPRS = ['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rbp', 'rsp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14',
  'r15'] as const;
const SEGS = ['cs', 'ss', 'ds', 'es', 'fs', 'gs'] as const;
const REG_RIP = 16;
const REG_EFLAGS = 17;
/** Register numbers of the x87 part (st0-7, then fctrl fstat ftag fiseg fioff foseg fooff fop), SSE (xmm0-15, mxcsr). */
const REG_ST0 = 24;
const REG_FCTRL = 32;
const REG_XMM0 = 40;
const REG_MXCSR = 56;
const REG_COUNT = 57;

/** The target description gdb asks for (qXfer:features:read:target.xml): 64-bit x86, the registers above. */
export const TARGET_XML = [
  '<?xml version="1.0"?><!DOCTYPE target SYSTEM "gdb-target.dtd"><target version="1.0">',
  '<architecture>i386:x86-64</architecture><feature name="org.gnu.gdb.i386.core">',
  ...GPRS.map((r) => `<reg name="${r}" bitsize="64" type="${r === 'rbp' || r === 'rsp' ? 'data_ptr' : 'int64'}"/>`),
  '<reg name="rip" bitsize="64" type="code_ptr"/><reg name="eflags" bitsize="32" type="int32"/>',
  ...SEGS.map((r) => `<reg name="${r}" bitsize="32" type="int32"/>`),
  ...[0, 1, 2, 3, 4, 5, 6, 7].map((i) => `<reg name="st${i}" bitsize="80" type="i387_ext"/>`),
  ...['fctrl', 'fstat', 'ftag', 'fiseg', 'fioff', 'foseg', 'fooff', 'fop'].map((r) => `<reg name="${r}" bitsize="32" type="int" group="float"/>`),
  '</feature><feature name="org.gnu.gdb.i386.sse">',
  ...Array.from({ length: 16 }, (_, i) => `<reg name="xmm${i}" bitsize="128" type="uint128" group="vector"/>`),
  '<reg name="mxcsr" bitsize="32" type="int" group="vector"/></feature></target>',
].join('');

const hex2 = (b: number): string => b.toString(16).padStart(2, '0');

/** `bytes` little-endian bytes of `v`, as hex. */
function leHex(v: bigint, bytes: number): string {
  let s = '';
  for (let i = 0; i < bytes; i++) s += hex2(Number((v >> BigInt(8 * i)) & 0xffn));
  return s;
}

function parseLeHex(h: string): bigint {
  let v = 0n;
  for (let i = h.length - 2; i >= 0; i -= 2) v = (v << 8n) | BigInt(parseInt(h.slice(i, i + 2), 16));
  return v;
}

function parseHexBytes(h: string): Uint8Array | undefined {
  if (h.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(h)) return undefined;
  return Uint8Array.from({ length: h.length / 2 }, (_, i) => parseInt(h.slice(2 * i, 2 * i + 2), 16));
}

/** The sandbox parts the stub works on. */
export interface GdbTarget {
  readonly machine: Machine;
  /** Lets KVM finish the instruction of the last exit (before registers are set: RunLoop.completePendingExit). */
  completePendingExit(): void;
  /** Pages the host wrote into guest memory: restore() copies them back (RunLoop.syscalls.hostWrittenPages). */
  readonly hostWrittenPages: Set<number>;
  /** Where the guest's ELF was loaded minus its link address (qOffsets). */
  readonly loadOffset: bigint;
  /** Stops and restarts the call's time limit while gdb holds the guest. */
  pauseClock(): number;
  resumeClock(left: number): void;
}

/** Frames gdb's packets on one connected socket: `$payload#checksum`, acknowledgements until QStartNoAckMode. */
export class RspChannel {
  readonly #fd: number;
  readonly #buf = new Uint8Array(4096);
  #have = 0;
  #at = 0;
  #noAck = false;
  #last = '';

  constructor(fd: number) {
    this.#fd = fd;
  }

  #byte(): number {
    if (this.#at === this.#have) {
      this.#have = recvBlocking(this.#fd, this.#buf);
      this.#at = 0;
      if (this.#have === 0) return -1;
    }
    return this.#buf[this.#at++]!;
  }

  /** The next packet's payload; undefined when gdb closed the connection. Acks, nacks and interrupts (0x03) between packets are consumed. */
  read(): string | undefined {
    for (;;) {
      let c = this.#byte();
      if (c < 0) return undefined;
      if (c === 0x2d /* - */) { this.#write(this.#last); continue; }
      if (c !== 0x24 /* $ */) continue;
      const body: number[] = [];
      let sum = 0;
      for (;;) {
        c = this.#byte();
        if (c < 0) return undefined;
        if (c === 0x23 /* # */) break;
        body.push(c);
        sum = (sum + c) & 0xff;
        if (body.length > PACKET_SIZE) break; // oversized: the checksum below fails
      }
      const h1 = this.#byte();
      const h2 = this.#byte();
      if (h1 < 0 || h2 < 0) return undefined;
      const given = parseInt(String.fromCharCode(h1, h2), 16);
      if (given !== sum || body.length > PACKET_SIZE) {
        if (!this.#noAck) sendAll(this.#fd, Uint8Array.of(0x2d));
        continue;
      }
      if (!this.#noAck) sendAll(this.#fd, Uint8Array.of(0x2b));
      return String.fromCharCode(...body);
    }
  }

  /** Sends `payload` as one packet (binary-safe escaping is not needed: replies are hex and ASCII). */
  send(payload: string): void {
    let sum = 0;
    for (let i = 0; i < payload.length; i++) sum = (sum + payload.charCodeAt(i)) & 0xff;
    this.#last = `$${payload}#${hex2(sum)}`;
    this.#write(this.#last);
  }

  #write(s: string): void {
    if (s) sendAll(this.#fd, new TextEncoder().encode(s));
  }

  noAck(): void {
    this.#noAck = true;
  }

  close(): void {
    try { closeFd(this.#fd); } catch { /* already gone */ }
  }
}

/** Where the stopped guest's registers live: the CPL0 stub's ring-3 frame (RAX RIP RFLAGS RSP there, the rest in the vCPU), or all in the vCPU. */
type StopPlace = 'frame' | 'vcpu';

/** What to do after gdb resumed the guest. */
type Resume = 'continue' | 'step' | 'fail';

/** A breakpoint: the guest address and the byte int3 replaced. */
interface Breakpoint { gpa: number; saved: number; patched: boolean }

/** One sandbox's gdb stub. Created with the sandbox (it listens at once); gdb is awaited at the first call. */
export class GdbStub {
  readonly #port: number;
  readonly #t: GdbTarget;
  #listenFd: number | undefined;
  #rsp: RspChannel | undefined;
  /** gdb detached or killed: the sandbox runs on without a debugger. */
  #done = false;
  /** gdb is waiting for a stop reply (the guest runs). */
  #running = false;
  /** The guest was resumed with TF set by the stub. */
  stepping = false;
  readonly #breakpoints = new Map<bigint, Breakpoint>();
  #place: StopPlace = 'vcpu';
  #stopReply = 'S05';
  #killed = false;

  constructor(port: number, target: GdbTarget) {
    this.#port = port;
    this.#t = target;
    try {
      this.#listenFd = listenLoopback(port);
    } catch (e) {
      throw new ConfigInvalidError('debug.gdbPort', `cannot listen on 127.0.0.1:${port}: ${(e as Error).message}` +
        (e instanceof SyscallError && e.errno === EADDRINUSE ? ' (the port is in use: choose another)' : ''), { cause: e });
    }
  }

  /** Whether a gdb session is active (connected and not detached). */
  get attached(): boolean {
    return this.#rsp !== undefined && !this.#done;
  }

  /**
   * Before a call enters the guest: the first time, waits for gdb to connect (blocking the
   * calling thread) and serves it with the guest stopped where the call starts.
   */
  beforeCall(): void {
    if (this.#done || this.#rsp !== undefined || this.#listenFd === undefined) return;
    const left = this.#t.pauseClock(); // the wait for gdb is not the call's time
    try {
      const fd = acceptBlocking(this.#listenFd);
      closeFd(this.#listenFd);
      this.#listenFd = undefined;
      this.#rsp = new RspChannel(fd);
      this.#t.completePendingExit();
      this.#stop('vcpu', 'S05', false);
    } finally {
      this.#t.resumeClock(left);
    }
  }

  /**
   * The guest raised CPU exception `vector` (the stub's frame holds its ring-3 state). A
   * breakpoint or step of ours, or a guest int3, is reported to gdb and the guest resumes
   * when gdb says so: true. Any other exception is reported as its signal; when gdb resumes,
   * false: the call fails as it would without a debugger.
   */
  exception(vector: number): boolean {
    if (!this.attached) return false;
    const m = this.#t.machine;
    const top = m.layout.exceptionStack.gpa + m.layout.exceptionStack.size;
    const f = readExceptionFrame(hostView(m.memory), top);
    if (f.cs !== SEL_USER_CODE) return false;
    let reply: string;
    let trap = false;
    if (vector === VECTOR_BP && this.#breakpoints.get(f.rip - 1n)?.patched) {
      this.#setFrame(FRAME_OFF_RIP, f.rip - 1n); // report (and resume) at the breakpoint itself
      reply = `T${hex2(SIGTRAP)}swbreak:;`;
      trap = true;
    } else if (vector === VECTOR_DB && this.stepping) {
      reply = `T${hex2(SIGTRAP)}`;
      trap = true;
    } else if (vector === VECTOR_BP) {
      reply = `T${hex2(SIGTRAP)}`; // the guest's own int3: it resumes after it
      trap = true;
    } else {
      reply = `T${hex2(signalOfVector(vector))}`;
    }
    const how = this.#stop('frame', reply, !trap);
    return how !== 'fail';
  }

  /** A served system call returns to a guest being single-stepped: the frame's RFLAGS keeps TF. */
  keepStepping(frameRflagsAt: number): void {
    if (!this.stepping) return;
    const v = hostView(this.#t.machine.memory);
    v.setBigUint64(frameRflagsAt, v.getBigUint64(frameRflagsAt, true) | RFLAGS_TF, true);
  }

  /** Takes every int3 out of guest memory (before a snapshot or restore). */
  unpatch(): void {
    const bytes = hostBytes(this.#t.machine.memory);
    for (const bp of this.#breakpoints.values()) {
      if (bp.patched) { bytes[bp.gpa] = bp.saved; bp.patched = false; }
    }
  }

  /** Puts the breakpoints back (after a snapshot or restore), saving what memory holds now. */
  repatch(): void {
    for (const [va, bp] of this.#breakpoints) {
      if (!bp.patched) this.#patch(va, bp);
    }
  }

  /** Ends the session: gdb is told the guest exited, breakpoints come out, sockets close. */
  close(): void {
    if (this.#rsp && !this.#done) {
      try {
        if (this.#running) this.#rsp.send('W00');
      } catch { /* gdb is gone */ }
    }
    this.unpatch();
    this.#breakpoints.clear();
    this.#rsp?.close();
    this.#rsp = undefined;
    this.#done = true;
    if (this.#listenFd !== undefined) {
      try { closeFd(this.#listenFd); } catch { /* closed */ }
      this.#listenFd = undefined;
    }
  }

  // ---- serving gdb while the guest is stopped -----------------------------------------

  #stop(place: StopPlace, reply: string, fatal: boolean): Resume {
    this.#place = place;
    this.#stopReply = reply;
    this.stepping = false;
    const left = this.#t.pauseClock();
    let how: Resume;
    try {
      if (this.#running) this.#rsp!.send(reply);
      this.#running = false;
      how = this.#serve();
    } catch (e) {
      // gdb vanished or the socket failed: run on without it.
      this.#detach();
      if (e instanceof ExecutionCanceledError) throw e;
      how = 'continue';
    } finally {
      this.#t.resumeClock(left);
    }
    if (this.#killed) {
      this.#killed = false;
      throw new ExecutionCanceledError('killed', ' (gdb killed the guest)');
    }
    if (fatal) return 'fail';
    this.#resume(how === 'step');
    return how;
  }

  /** Answers packets until one resumes the guest. */
  #serve(): Resume {
    const rsp = this.#rsp!;
    for (;;) {
      const p = rsp.read();
      if (p === undefined) { this.#detach(); return 'continue'; }
      if (p === 'QStartNoAckMode') { rsp.send('OK'); rsp.noAck(); continue; }
      const r = this.#packet(p);
      if (r === 'continue' || r === 'step') { this.#running = true; return r; }
      if (r === 'detach') { rsp.send('OK'); this.#detach(); return 'continue'; }
      if (r === 'kill') { this.#detach(); this.#killed = true; return 'continue'; }
      rsp.send(r.reply);
    }
  }

  #detach(): void {
    this.unpatch();
    this.#breakpoints.clear();
    this.#rsp?.close();
    this.#done = true;
    this.#running = false;
  }

  #packet(p: string): 'continue' | 'step' | 'detach' | 'kill' | { reply: string } {
    const ok = { reply: 'OK' };
    const empty = { reply: '' };
    const err = (n: number) => ({ reply: `E${hex2(n)}` });
    switch (p[0]) {
      case '?': return { reply: this.#stopReply };
      case 'g': return { reply: this.#readAll() };
      case 'G': return this.#writeAll(p.slice(1)) ? ok : err(22);
      case 'p': {
        const n = parseInt(p.slice(1), 16);
        return n >= 0 && n < REG_COUNT ? { reply: this.#readReg(n) } : err(22);
      }
      case 'P': {
        const [n, v] = p.slice(1).split('=');
        return this.#writeReg(parseInt(n ?? '', 16), v ?? '') ? ok : err(22);
      }
      case 'm': {
        const [a, l] = p.slice(1).split(',');
        const bytes = this.#readMemory(BigInt(`0x${a}`), Math.min(parseInt(l ?? '0', 16), MAX_MEMORY_PACKET));
        return bytes && bytes.length > 0 ? { reply: [...bytes].map(hex2).join('') } : err(14);
      }
      case 'M': {
        const [head, data] = p.slice(1).split(':');
        const [a, l] = (head ?? '').split(',');
        const bytes = parseHexBytes(data ?? '');
        if (!bytes || bytes.length !== parseInt(l ?? '', 16) || bytes.length > MAX_MEMORY_PACKET) return err(22);
        return this.#writeMemory(BigInt(`0x${a}`), bytes) ? ok : err(14);
      }
      case 'c': case 'C': case 's': case 'S': {
        // An address (c/s) or signal;address (C/S) asks to resume elsewhere.
        const rest = p.slice(1);
        const at = p[0] === 'c' || p[0] === 's' ? rest : rest.split(';')[1];
        if (at) this.#writeReg(REG_RIP, leHex(BigInt(`0x${at}`), 8));
        return p[0] === 'c' || p[0] === 'C' ? 'continue' : 'step';
      }
      case 'Z': case 'z': {
        const [type, a] = p.slice(1).split(',');
        if (type !== '0') return empty; // hardware breakpoints and watchpoints: not on this KVM
        const va = BigInt(`0x${a}`);
        return (p[0] === 'Z' ? this.#insert(va) : this.#remove(va)) ? ok : err(14);
      }
      case 'D': return 'detach';
      case 'k': return 'kill';
      case 'H': return ok;
      case 'T': return ok;
      case 'v':
        if (p === 'vMustReplyEmpty') return empty;
        if (p.startsWith('vKill')) return 'kill';
        return empty; // no vCont: gdb uses c and s
      case 'q': return this.#query(p);
      case 'Q': return empty;
      default: return empty;
    }
  }

  #query(p: string): { reply: string } {
    if (p.startsWith('qSupported')) {
      return { reply: `PacketSize=${PACKET_SIZE.toString(16)};qXfer:features:read+;swbreak+;QStartNoAckMode+` };
    }
    if (p.startsWith('qXfer:features:read:target.xml:')) {
      const [o, l] = p.slice('qXfer:features:read:target.xml:'.length).split(',');
      const off = parseInt(o ?? '0', 16);
      const len = parseInt(l ?? '0', 16);
      const chunk = TARGET_XML.slice(off, off + len);
      return { reply: (off + len >= TARGET_XML.length ? 'l' : 'm') + chunk };
    }
    if (p === 'qOffsets') {
      const o = this.#t.loadOffset.toString(16);
      return { reply: `Text=${o};Data=${o};Bss=${o}` };
    }
    if (p === 'qC') return { reply: 'QC1' };
    if (p === 'qfThreadInfo') return { reply: 'm1' };
    if (p === 'qsThreadInfo') return { reply: 'l' };
    if (p === 'qAttached') return { reply: '1' };
    if (p.startsWith('qSymbol')) return { reply: 'OK' };
    return { reply: '' };
  }

  // ---- registers -------------------------------------------------------------------------

  #frameAt(): number {
    const m = this.#t.machine;
    return m.layout.exceptionStack.gpa + m.layout.exceptionStack.size - EXCEPTION_FRAME_SIZE;
  }

  #setFrame(off: number, v: bigint): void {
    hostView(this.#t.machine.memory).setBigUint64(this.#frameAt() + off, v, true);
  }

  #getFrame(off: number): bigint {
    return hostView(this.#t.machine.memory).getBigUint64(this.#frameAt() + off, true);
  }

  /** The 24 integer registers (rax..r15, rip, eflags, cs..gs) of the stopped guest. */
  #integerRegs(): bigint[] {
    const m = this.#t.machine;
    const r = m.vcpu.getRegs();
    const s = m.vcpu.getSregs();
    const out = GPRS.map((n) => r[n]);
    out.push(r.rip, r.rflags, ...SEGS.map((n) => BigInt(s[n].selector)));
    if (this.#place === 'frame') {
      out[0] = this.#getFrame(FRAME_OFF_RAX);
      out[7] = this.#getFrame(FRAME_OFF_RSP);
      out[REG_RIP] = this.#getFrame(FRAME_OFF_RIP);
      out[REG_EFLAGS] = this.#getFrame(FRAME_OFF_RFLAGS);
      out[18] = this.#getFrame(40) & 0xffffn; // CS
      out[19] = this.#getFrame(64) & 0xffffn; // SS
    }
    out[REG_EFLAGS] = out[REG_EFLAGS]! & ~RFLAGS_TF; // the stub's single-step flag is not the guest's
    return out;
  }

  /** Register `n` as gdb's hex (little-endian, its size). */
  #readReg(n: number, ints = n < 24 ? this.#integerRegs() : undefined, fx = n >= 24 ? this.#t.machine.vcpu.getXsave() : undefined): string {
    if (n < 16 || n === REG_RIP) return leHex(ints![n]!, 8);
    if (n < 24) return leHex(ints![n]!, 4);
    const x = fx!;
    const dv = new DataView(x.buffer, x.byteOffset, x.byteLength);
    if (n < REG_FCTRL) return [...x.subarray(32 + 16 * (n - REG_ST0), 32 + 16 * (n - REG_ST0) + 10)].map(hex2).join('');
    if (n < REG_XMM0) {
      switch (n - REG_FCTRL) {
        case 0: return leHex(BigInt(dv.getUint16(0, true)), 4);
        case 1: return leHex(BigInt(dv.getUint16(2, true)), 4);
        case 2: { // the full tag word from FXSAVE's abridged one: valid (00) or empty (11)
          const abridged = x[4]!;
          let tag = 0;
          for (let i = 0; i < 8; i++) if (!(abridged & (1 << i))) tag |= 3 << (2 * i);
          return leHex(BigInt(tag), 4);
        }
        case 3: return leHex(0n, 4);
        case 4: return leHex(BigInt(dv.getUint32(8, true)), 4);
        case 5: return leHex(0n, 4);
        case 6: return leHex(BigInt(dv.getUint32(16, true)), 4);
        default: return leHex(BigInt(dv.getUint16(6, true)), 4);
      }
    }
    if (n < REG_MXCSR) return [...x.subarray(160 + 16 * (n - REG_XMM0), 176 + 16 * (n - REG_XMM0))].map(hex2).join('');
    return leHex(BigInt(dv.getUint32(24, true)), 4);
  }

  #readAll(): string {
    const ints = this.#integerRegs();
    const fx = this.#t.machine.vcpu.getXsave();
    let s = '';
    for (let n = 0; n < REG_COUNT; n++) s += this.#readReg(n, ints, fx);
    return s;
  }

  /** Size in bytes of register `n` in the g packet. */
  static #size(n: number): number {
    if (n < 16 || n === REG_RIP) return 8;
    if (n < REG_ST0) return 4;
    if (n < REG_FCTRL) return 10;
    if (n < REG_XMM0) return 4;
    if (n < REG_MXCSR) return 16;
    return 4;
  }

  /** Writes the integer registers rax..r15, rip and eflags; others are refused (false). */
  #writeReg(n: number, hexValue: string): boolean {
    if (!Number.isInteger(n) || n < 0 || n > REG_EFLAGS || hexValue.length !== 2 * GdbStub.#size(n) || !/^[0-9a-fA-F]+$/.test(hexValue)) {
      return false;
    }
    let v = parseLeHex(hexValue);
    if (n === REG_EFLAGS) v = RFLAGS_RESERVED_1 | (v & DEBUG_RFLAGS & ~RFLAGS_TF);
    const inFrame = this.#place === 'frame' ? { 0: FRAME_OFF_RAX, 7: FRAME_OFF_RSP, [REG_RIP]: FRAME_OFF_RIP, [REG_EFLAGS]: FRAME_OFF_RFLAGS }[n] : undefined;
    if (inFrame !== undefined) {
      this.#setFrame(inFrame, v);
      return true;
    }
    const m = this.#t.machine;
    if (this.#place === 'frame') this.#t.completePendingExit();
    const r = m.vcpu.getRegs();
    if (n === REG_RIP) r.rip = v;
    else if (n === REG_EFLAGS) r.rflags = v;
    else r[GPRS[n]!] = v;
    m.vcpu.setRegs(r);
    return true;
  }

  /** G: the integer registers are written; the x87/SSE part must be unchanged (it is not writable here). */
  #writeAll(h: string): boolean {
    const current = this.#readAll();
    if (h.length !== current.length) return false;
    let at = 0;
    for (let n = 0; n < REG_COUNT; n++) {
      const len = 2 * GdbStub.#size(n);
      const part = h.slice(at, at + len);
      const now = current.slice(at, at + len);
      at += len;
      if (part.toLowerCase() === now) continue;
      if (n > REG_EFLAGS || !this.#writeReg(n, part)) return false;
    }
    return true;
  }

  /** Resumes: the frame's vector slot tells the stub to iretq (frame) with TF as asked; or the vCPU's RFLAGS (vcpu). */
  #resume(step: boolean): void {
    this.stepping = step;
    if (this.#place === 'frame') {
      const fl = this.#getFrame(FRAME_OFF_RFLAGS);
      this.#setFrame(FRAME_OFF_RFLAGS, RFLAGS_RESERVED_1 | (fl & DEBUG_RFLAGS & ~RFLAGS_TF) | (step ? RFLAGS_TF : 0n));
      this.#setFrame(FRAME_OFF_VECTOR, SYSCALL_RESUME);
    } else {
      const vcpu = this.#t.machine.vcpu;
      const r = vcpu.getRegs();
      const fl = (r.rflags & ~RFLAGS_TF) | (step ? RFLAGS_TF : 0n);
      if (fl !== r.rflags) { r.rflags = fl; vcpu.setRegs(r); }
    }
  }

  // ---- memory and breakpoints ------------------------------------------------------------

  /** The guest-physical address of user-accessible guest-virtual `va` in the sandbox's memory, via the host-built page tables. */
  #translate(va: bigint): number | undefined {
    const m = this.#t.machine;
    let t: ReturnType<typeof walk>;
    try {
      t = walk(hostBytes(m.memory), m.cr3, va);
    } catch {
      return undefined;
    }
    if (!t || !t.user || t.gpa >= m.memory.size) return undefined;
    return t.gpa;
  }

  /** Up to `len` bytes from `va`; stops at the first byte that is not mapped for the guest (gdb then reads less). */
  #readMemory(va: bigint, len: number): Uint8Array | undefined {
    if (!Number.isInteger(len) || len < 0) return undefined;
    const bytes = hostBytes(this.#t.machine.memory);
    const out: number[] = [];
    for (let i = 0; i < len; i++) {
      const gpa = this.#translate(va + BigInt(i));
      if (gpa === undefined) break;
      out.push(bytes[gpa]!);
    }
    return Uint8Array.from(out);
  }

  /** Writes all of `data` at `va` or nothing; each page written is one restore() copies back. */
  #writeMemory(va: bigint, data: Uint8Array): boolean {
    const gpas: number[] = [];
    for (let i = 0; i < data.length; i++) {
      const gpa = this.#translate(va + BigInt(i));
      if (gpa === undefined) return false;
      gpas.push(gpa);
    }
    const bytes = hostBytes(this.#t.machine.memory);
    gpas.forEach((gpa, i) => {
      bytes[gpa] = data[i]!;
      this.#t.hostWrittenPages.add(Math.floor(gpa / 4096));
    });
    return true;
  }

  #patch(va: bigint, bp: Breakpoint): boolean {
    const gpa = this.#translate(va);
    if (gpa === undefined) return false;
    const bytes = hostBytes(this.#t.machine.memory);
    bp.gpa = gpa;
    bp.saved = bytes[gpa]!;
    bytes[gpa] = 0xcc;
    bp.patched = true;
    this.#t.hostWrittenPages.add(Math.floor(gpa / 4096));
    return true;
  }

  #insert(va: bigint): boolean {
    if (this.#breakpoints.has(va)) return true;
    const bp: Breakpoint = { gpa: 0, saved: 0, patched: false };
    if (!this.#patch(va, bp)) return false;
    this.#breakpoints.set(va, bp);
    return true;
  }

  #remove(va: bigint): boolean {
    const bp = this.#breakpoints.get(va);
    if (!bp) return true;
    if (bp.patched) hostBytes(this.#t.machine.memory)[bp.gpa] = bp.saved;
    this.#breakpoints.delete(va);
    return true;
  }

  /** @internal the port this stub listens on. */
  get port(): number {
    return this.#port;
  }
}
