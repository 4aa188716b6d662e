// The Linux system calls the host serves to a guest's libc (docs/guest-abi.md "System calls"): a small, bounded set over the guest's own memory; every argument is untrusted. It does not decide how a `syscall` reaches the host (run-loop.ts and faults.ts do).
import { randomFillSync } from 'node:crypto';
import { walk } from '../mem/x86_64/index.js';
import type { MemoryLayout } from '../mem/x86_64/index.js';
import { GuestAbortedError } from './errors.js';

/** Linux x86-64 system-call numbers the host knows (arch/x86/entry/syscalls/syscall_64.tbl). */
export const SYS = {
  write: 1, mmap: 9, mprotect: 10, munmap: 11, brk: 12, rt_sigprocmask: 14, ioctl: 16, writev: 20,
  madvise: 28, getpid: 39, exit: 60, arch_prctl: 158, gettid: 186, set_tid_address: 218,
  clock_gettime: 228, exit_group: 231, getrandom: 318,
} as const;

/** Linux errno values returned (negated) in RAX. */
export const ERRNO = { EPERM: 1, EBADF: 9, ENOMEM: 12, EFAULT: 14, EINVAL: 22, ENOTTY: 25, ENOSYS: 38 } as const;

const SYSCALL_NAMES: ReadonlyMap<number, string> = new Map(Object.entries(SYS).map(([name, nr]) => [nr, name]));
const ERRNO_NAMES: ReadonlyMap<number, string> = new Map(Object.entries(ERRNO).map(([name, n]) => [n, name]));

/** The name of system call `nr` the host serves, or undefined for one it answers -ENOSYS. */
export function syscallName(nr: bigint | number): string | undefined {
  return SYSCALL_NAMES.get(Number(nr));
}

/** A system call's RAX as Linux's strace shows it: the value, or -1 and the errno's name. */
export function describeSyscallResult(result: bigint): string {
  const signed = BigInt.asIntN(64, result);
  if (signed < 0n && signed >= -4095n) return `-1 ${ERRNO_NAMES.get(Number(-signed)) ?? `errno ${-signed}`}`;
  return signed >= 0n && signed < 4096n ? String(signed) : `0x${result.toString(16)}`;
}

const PAGE = 4096;
const ARCH_SET_FS = 0x1002;
const ARCH_GET_FS = 0x1003;
const TIOCGWINSZ = 0x5413;
const MAP_PRIVATE = 0x02;
const MAP_FIXED = 0x10;
const MAP_ANONYMOUS = 0x20;
const PROT_ALL = 0x7;
const IOV_MAX = 1024;
/** Bytes one write/writev passes to the print function at most (a shorter count is returned, as Linux may). */
export const SYSCALL_WRITE_MAX = 0x10000;
/** Bytes one getrandom fills at most. */
const GETRANDOM_MAX = 256;
/** Where, in the PEB's page (read-only to the guest, beyond the PEB's fields), the brk and mmap state
 * lives, so that it is captured, restored and reused with guest memory: u64 break, u64 lowest mapped
 * address (0: unset). Values outside the heap (a snapshot file can hold anything) count as unset. */
const STATE_OFF = 0xf00;

/** What a served system call needs from its sandbox. */
export interface SyscallHost {
  /** Text written to fd 1 or 2 (the print path). */
  print(text: string): void;
  /** Sets the guest's FS base (arch_prctl ARCH_SET_FS). */
  setFsBase(value: bigint): void;
  /** Reads the guest's FS base. */
  fsBase(): bigint;
}

const utf8 = new TextDecoder();
const MASK64 = (1n << 64n) - 1n;

/** Serves one guest's system calls. Counts every call by number; unknown numbers get -ENOSYS. */
export class SyscallServer {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  readonly #cr3: bigint;
  readonly #userLo: number;
  readonly #heapLo: number;
  readonly #heapHi: number;
  readonly #state: number;
  readonly #host: SyscallHost;
  /** Calls served, by system-call number (the ones answered -ENOSYS included). */
  readonly counts = new Map<number, number>();
  /** Calls answered -ENOSYS (numbers the host does not serve). */
  unknown = 0;
  /** Guest pages the host wrote since the last snapshot or restore (not in KVM's dirty log). */
  readonly hostWrittenPages = new Set<number>();

  constructor(bytes: Uint8Array, view: DataView, layout: MemoryLayout, cr3: bigint, host: SyscallHost) {
    this.#bytes = bytes;
    this.#view = view;
    this.#cr3 = cr3;
    this.#userLo = layout.peb.gpa;
    this.#heapLo = Math.ceil(layout.heap.gpa / PAGE) * PAGE;
    this.#heapHi = Math.floor((layout.heap.gpa + layout.heap.size) / PAGE) * PAGE;
    this.#state = layout.peb.gpa + STATE_OFF;
    this.#host = host;
  }

  /** Serves system call `nr` with arguments `a` (rdi rsi rdx r10 r8 r9); returns RAX (a -errno on failure). */
  serve(nr: bigint, a: readonly bigint[]): bigint {
    const n = nr > 0xffffn ? -1 : Number(nr);
    this.counts.set(n, (this.counts.get(n) ?? 0) + 1);
    const r = this.#dispatch(n, a);
    return BigInt.asUintN(64, BigInt(r));
  }

  #dispatch(n: number, a: readonly bigint[]): number | bigint {
    const arg = (i: number): bigint => a[i] ?? 0n;
    switch (n) {
      case SYS.write: return this.#write(arg(0), [[arg(1), arg(2)]]);
      case SYS.writev: return this.#writev(arg(0), arg(1), arg(2));
      case SYS.brk: return this.#brk(arg(0));
      case SYS.mmap: return this.#mmap(arg(0), arg(1), arg(2), arg(3), arg(4));
      case SYS.munmap: return this.#munmap(arg(0), arg(1));
      case SYS.mprotect: return this.#mprotect(arg(0), arg(1), arg(2));
      case SYS.madvise: return 0;
      case SYS.exit:
      case SYS.exit_group: {
        const code = Number(arg(0) & 0xffn);
        throw new GuestAbortedError(code, `guest called exit(${code})`);
      }
      case SYS.clock_gettime: return this.#clockGettime(arg(0), arg(1));
      case SYS.getrandom: return this.#getrandom(arg(0), arg(1));
      case SYS.arch_prctl: return this.#archPrctl(arg(0), arg(1));
      case SYS.set_tid_address:
      case SYS.gettid:
      case SYS.getpid: return 1;
      case SYS.rt_sigprocmask: {
        const oldset = arg(2);
        if (oldset !== 0n && !this.#store(oldset, new Uint8Array(8))) return -ERRNO.EFAULT;
        return 0;
      }
      case SYS.ioctl: return arg(1) === BigInt(TIOCGWINSZ) && (arg(0) === 1n || arg(0) === 2n) ? -ERRNO.ENOTTY : -ERRNO.EBADF;
      default:
        this.unknown++;
        return -ERRNO.ENOSYS;
    }
  }

  // ---- guest memory, checked ---------------------------------------------------------

  /** `len` guest bytes at `addr` if they lie in the guest's own memory; a view, copy before resuming. */
  #readable(addr: bigint, len: bigint): Uint8Array | undefined {
    const end = addr + len;
    if (len < 0n || addr < BigInt(this.#userLo) || end > BigInt(this.#bytes.length)) return undefined;
    return this.#bytes.subarray(Number(addr), Number(end));
  }

  /** Writes `data` at guest address `addr` if every page is mapped user-writable for the guest (W^X holds). */
  #store(addr: bigint, data: Uint8Array): boolean {
    if (addr < BigInt(this.#userLo) || addr + BigInt(data.length) > BigInt(this.#bytes.length)) return false;
    const lo = Number(addr);
    const hi = lo + data.length;
    for (let p = Math.floor(lo / PAGE); p * PAGE < hi; p++) {
      const t = walk(this.#bytes, this.#cr3, p * PAGE);
      if (!t || !t.user || !t.writable || t.gpa !== p * PAGE) return false;
    }
    this.#bytes.set(data, lo);
    this.#touched(lo, data.length);
    return true;
  }

  #touched(lo: number, len: number): void {
    for (let p = Math.floor(lo / PAGE); p * PAGE < lo + len; p++) this.hostWrittenPages.add(p);
  }

  // ---- the calls ---------------------------------------------------------------------

  #write(fd: bigint, iov: ReadonlyArray<readonly [bigint, bigint]>): number {
    if (fd !== 1n && fd !== 2n) return -ERRNO.EBADF;
    const parts: Uint8Array[] = [];
    let total = 0;
    for (const [base, len] of iov) {
      if (len === 0n) continue;
      const take = len > BigInt(SYSCALL_WRITE_MAX - total) ? SYSCALL_WRITE_MAX - total : Number(len);
      const bytes = this.#readable(base, BigInt(take));
      if (!bytes) return total > 0 ? total : -ERRNO.EFAULT;
      parts.push(bytes.slice());
      total += take;
      if (total >= SYSCALL_WRITE_MAX) break;
    }
    if (total > 0) this.#host.print(parts.length === 1 ? utf8.decode(parts[0]) : utf8.decode(Buffer.concat(parts)));
    return total;
  }

  #writev(fd: bigint, iovAddr: bigint, count: bigint): number {
    if (count < 0n || count > BigInt(IOV_MAX)) return -ERRNO.EINVAL;
    const raw = this.#readable(iovAddr, count * 16n);
    if (!raw) return -ERRNO.EFAULT;
    const v = new DataView(raw.buffer, raw.byteOffset, raw.length);
    const iov: Array<[bigint, bigint]> = [];
    for (let i = 0; i < Number(count); i++) iov.push([v.getBigUint64(16 * i, true), v.getBigUint64(16 * i + 8, true)]);
    return this.#write(fd, iov);
  }

  #u64(off: number): number {
    return Number(this.#view.getBigUint64(this.#state + off, true));
  }

  #setU64(off: number, value: number): void {
    this.#view.setBigUint64(this.#state + off, BigInt(value), true);
    this.#touched(this.#state + off, 8);
  }

  /** A stored address if it lies in the heap, else `unset`. */
  #inHeap(off: number, unset: number): number {
    const v = this.#u64(off);
    return v >= this.#heapLo && v <= this.#heapHi ? v : unset;
  }

  /** The current break (the heap's first page until the guest moves it). */
  #curBrk(): number {
    return this.#inHeap(0, this.#heapLo);
  }

  /** The lowest address mmap has handed out (the heap's end while nothing is mapped). */
  #mapLow(): number {
    return this.#inHeap(8, this.#heapHi);
  }

  /** Zeroes the pages of [lo, lo + len) that are not zero already (untouched pages stay unallocated in the host). */
  #zero(lo: number, len: number): void {
    const b = this.#bytes;
    for (let p = lo; p < lo + len; p += PAGE) {
      const page = b.subarray(p, p + PAGE);
      if (page.some((x) => x !== 0)) {
        page.fill(0);
        this.hostWrittenPages.add(p / PAGE);
      }
    }
  }

  /**
   * brk(addr): moves the break within [heap start, lowest mapping]; returns the break
   * (unchanged on failure, as Linux). Memory below a new break is not cleared: it holds
   * what the guest left in its heap (zero in a new sandbox).
   */
  #brk(want: bigint): number {
    const cur = this.#curBrk();
    if (want === 0n || want < BigInt(this.#heapLo) || want > BigInt(this.#mapLow())) return cur;
    const next = Number(want);
    this.#setU64(0, next);
    return next;
  }

  /** Anonymous private mappings, handed out top-down from the heap's end above the break. */
  #mmap(addr: bigint, len: bigint, prot: bigint, flags: bigint, fd: bigint): number {
    if (len === 0n || (prot & ~BigInt(PROT_ALL)) !== 0n) return -ERRNO.EINVAL;
    if ((flags & BigInt(MAP_ANONYMOUS)) === 0n || fd !== MASK64) return -ERRNO.ENOSYS;
    if ((flags & BigInt(MAP_PRIVATE)) === 0n || (flags & BigInt(MAP_FIXED)) !== 0n) return -ERRNO.EINVAL;
    void addr; // a hint; ignored, as Linux may
    const size = (len + BigInt(PAGE - 1)) & ~BigInt(PAGE - 1);
    const low = this.#mapLow();
    if (size > BigInt(low - this.#curBrk())) return -ERRNO.ENOMEM;
    const at = low - Number(size);
    this.#zero(at, Number(size));
    this.#setU64(8, at);
    return at;
  }

  /** Gives back the lowest mapping's pages (mappings are a stack); other ranges in the heap stay reserved until restore. */
  #munmap(addr: bigint, len: bigint): number {
    if ((addr & BigInt(PAGE - 1)) !== 0n || len === 0n) return -ERRNO.EINVAL;
    const size = (len + BigInt(PAGE - 1)) & ~BigInt(PAGE - 1);
    if (addr < BigInt(this.#heapLo) || addr + size > BigInt(this.#heapHi)) return -ERRNO.EINVAL;
    const lo = Number(addr);
    if (lo === this.#mapLow()) this.#setU64(8, lo + Number(size));
    return 0;
  }

  /** Page permissions stay the host's (read+write, no execute, for the heap); allowed only inside the heap. */
  #mprotect(addr: bigint, len: bigint, prot: bigint): number {
    if ((addr & BigInt(PAGE - 1)) !== 0n || (prot & ~BigInt(PROT_ALL)) !== 0n) return -ERRNO.EINVAL;
    if (addr < BigInt(this.#heapLo) || addr + len > BigInt(this.#heapHi)) return -ERRNO.ENOMEM;
    return (prot & 4n) !== 0n ? -ERRNO.EPERM : 0;
  }

  #clockGettime(clock: bigint, ts: bigint): number {
    if (clock > 7n) return -ERRNO.EINVAL;
    const ns = clock === 0n ? BigInt(Date.now()) * 1_000_000n : process.hrtime.bigint();
    const out = new Uint8Array(16);
    const v = new DataView(out.buffer);
    v.setBigInt64(0, ns / 1_000_000_000n, true);
    v.setBigInt64(8, ns % 1_000_000_000n, true);
    return this.#store(ts, out) ? 0 : -ERRNO.EFAULT;
  }

  #getrandom(buf: bigint, len: bigint): number {
    const n = len > BigInt(GETRANDOM_MAX) ? GETRANDOM_MAX : Number(len);
    return this.#store(buf, randomFillSync(new Uint8Array(n))) ? n : -ERRNO.EFAULT;
  }

  #archPrctl(code: bigint, addr: bigint): number {
    if (code === BigInt(ARCH_SET_FS)) {
      if (addr >= 1n << 47n) return -ERRNO.EPERM; // canonical lower half only
      this.#host.setFsBase(addr);
      return 0;
    }
    if (code === BigInt(ARCH_GET_FS)) {
      const out = new Uint8Array(8);
      new DataView(out.buffer).setBigUint64(0, this.#host.fsBase(), true);
      return this.#store(addr, out) ? 0 : -ERRNO.EFAULT;
    }
    return -ERRNO.EINVAL;
  }
}
