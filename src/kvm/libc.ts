// The libc calls hyperlight-ts makes, bound with koffi. The only module that imports
// koffi; it knows nothing about KVM beyond passing ioctl numbers through.
import koffi from 'koffi';
import { HyperlightError } from '../errors.js';
import { ERRNO, LIBC, itimerspec, sigaction, sigevent } from './layouts.generated.js';

export { LIBC };

const libc = koffi.load('libc.so.6');

// Two non-variadic prototypes for the variadic ioctl(2): on x86-64 an integer third
// argument and a pointer third argument travel in the same register, and glibc's ioctl
// reads exactly one word from it. Non-variadic declarations keep koffi's fast path.
const ioctlInt = libc.func('int ioctl(int fd, unsigned long request, unsigned long arg)');
const ioctlPtr = libc.func('int ioctl(int fd, unsigned long request, void *arg)');
const openFn = libc.func('int open(const char *path, int flags)');
const closeFn = libc.func('int close(int fd)');
const mmapFn = libc.func('void *mmap(void *addr, size_t len, int prot, int flags, int fd, int64_t off)');
const mmapAtFn = libc.func('void *mmap(uintptr_t addr, size_t len, int prot, int flags, int fd, int64_t off)');
const munmapFn = libc.func('int munmap(uintptr_t addr, size_t len)');
const mprotectFn = libc.func('int mprotect(uintptr_t addr, size_t len, int prot)');
const madviseFn = libc.func('int madvise(uintptr_t addr, size_t len, int advice)');
const mincoreFn = libc.func('int mincore(uintptr_t addr, size_t len, _Out_ uint8_t *vec)');
const memfdCreateFn = libc.func('int memfd_create(const char *name, unsigned int flags)');
const gettidFn = libc.func('int gettid()');
const getpidFn = libc.func('int getpid()');
const schedYieldFn = libc.func('int sched_yield()');
const pipe2Fn = libc.func('int pipe2(_Out_ int *fds, int flags)');
const writeFn = libc.func('intptr_t write(int fd, const void *buf, size_t len)');
const tgkillFn = libc.func('int tgkill(int tgid, int tid, int sig)');
const sigactionFn = libc.func('int sigaction(int sig, void *act, void *oldact)');
const timerCreateFn = libc.func('int timer_create(int clockid, void *sevp, void *timerid)');
const timerSettimeFn = libc.func('int timer_settime(intptr_t timerid, int flags, void *newValue, void *oldValue)');
const timerDeleteFn = libc.func('int timer_delete(intptr_t timerid)');
const sigrtminFn = libc.func('int __libc_current_sigrtmin()');
const sigrtmaxFn = libc.func('int __libc_current_sigrtmax()');
const socketFn = libc.func('int socket(int domain, int type, int protocol)');
const setsockoptFn = libc.func('int setsockopt(int fd, int level, int name, void *value, uint32_t len)');
const bindFn = libc.func('int bind(int fd, void *addr, uint32_t len)');
const listenFn = libc.func('int listen(int fd, int backlog)');
const acceptFn = libc.func('int accept4(int fd, void *addr, void *len, int flags)');
const recvFn = libc.func('intptr_t recv(int fd, void *buf, size_t len, int flags)');
const sendFn = libc.func('intptr_t send(int fd, void *buf, size_t len, int flags)');
const pthreadSigmaskFn = libc.func('int pthread_sigmask(int how, void *set, void *oldset)');
const sigtimedwaitFn = libc.func('int sigtimedwait(void *set, void *info, void *timeout)');

/** An opaque pointer returned by libc (koffi external). */
export type NativePointer = unknown;

const errnoNames = new Map<number, string>();
for (const [name, value] of Object.entries(ERRNO)) {
  if (!errnoNames.has(value)) errnoNames.set(value, name);
}

/** The symbolic name of an errno value, e.g. 14 -> `EFAULT`. */
export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `errno ${errno}`;
}

/**
 * What a failure with `errno` usually means for this library and what fixes it, for
 * errors that name a resource limit rather than a bug; '' for other errnos.
 */
export function resourceHint(errno: number, call = ''): string {
  switch (errno) {
    case ERRNO.EMFILE: return 'too many open files: close sandboxes or raise ulimit -n';
    case ERRNO.ENFILE: return 'the system-wide file table is full: close sandboxes or raise fs.file-max';
    case ERRNO.ENOMEM:
      return 'out of memory or memory mappings: close sandboxes, use smaller heapSize/stackSize, or raise ' +
        'vm.max_map_count and ulimit -v';
    case ERRNO.EAGAIN:
      return call.startsWith('timer_create')
        ? 'no POSIX timer available (the per-user limit of pending signals is reached): close sandboxes or raise ulimit -i'
        : 'resource temporarily unavailable: close sandboxes or raise the limit involved (ulimit -a)';
    default: return '';
  }
}

/**
 * A libc call failed (ERR_SYSTEM); carries the call and errno, and for resource limits a
 * message naming the cause and the fix ("too many open files: close sandboxes or raise
 * ulimit -n").
 */
export class SyscallError extends HyperlightError {
  readonly call: string;
  readonly errno: number;
  readonly errnoName: string;

  constructor(call: string, errno: number) {
    const hint = resourceHint(errno, call);
    super('ERR_SYSTEM', `${call} failed: ${errnoName(errno)}${hint ? ` (${hint})` : ''}`);
    this.call = call;
    this.errno = errno;
    this.errnoName = errnoName(errno);
  }
}

/** The errno of the most recent libc call on this thread. Read it right after the call. */
export function lastErrno(): number {
  return koffi.errno();
}

/**
 * ioctl(2) with an integer argument. Returns the result, or -errno (never throws). A call a
 * signal interrupted before it did anything (EINTR: a profiler's SIGPROF, the
 * application's own signals) is made again, as QEMU does for KVM_CREATE_VM; only
 * KVM_RUN, whose EINTR means a kick, uses ioctlOnce.
 */
export function ioctlWithInt(fd: number, request: number, arg: number | bigint = 0): number {
  for (;;) {
    const r = ioctlInt(fd, request, arg) as number;
    if (r >= 0) return r;
    const errno = koffi.errno();
    if (errno !== ERRNO.EINTR) return -errno;
  }
}

/** ioctl(2) with an integer argument, made once: EINTR comes back as -EINTR (KVM_RUN's kick). */
export function ioctlOnce(fd: number, request: number, arg: number | bigint = 0): number {
  const r = ioctlInt(fd, request, arg) as number;
  return r < 0 ? -koffi.errno() : r;
}

/**
 * ioctl(2) with a pointer to `buf` (passed without copying). Returns the result or -errno;
 * EINTR is retried as in ioctlWithInt.
 */
export function ioctlWithBuffer(fd: number, request: number, buf: Uint8Array): number {
  for (;;) {
    const r = ioctlPtr(fd, request, buf) as number;
    if (r >= 0) return r;
    const errno = koffi.errno();
    if (errno !== ERRNO.EINTR) return -errno;
  }
}

/** open(2); throws SyscallError. */
export function open(path: string, flags: number): number {
  const fd = openFn(path, flags) as number;
  if (fd < 0) throw new SyscallError(`open(${path})`, koffi.errno());
  return fd;
}

/** close(2); throws SyscallError (EBADF means a double close: a bug in the caller). */
export function close(fd: number): void {
  if ((closeFn(fd) as number) < 0) throw new SyscallError('close', koffi.errno());
}

export interface Mapping {
  /** Host-virtual address of the first byte. */
  readonly address: bigint;
  readonly pointer: NativePointer;
  readonly length: number;
}

const MAP_FAILED = 0xffff_ffff_ffff_ffffn;

/** mmap(2) of `length` bytes; `fd` -1 for anonymous memory. Throws SyscallError. */
export function mmap(length: number, prot: number, flags: number, fd = -1, offset = 0): Mapping {
  const pointer = mmapFn(null, length, prot, flags, fd, offset) as NativePointer;
  const address = pointer === null ? 0n : koffi.address(pointer);
  if (address === MAP_FAILED || address === 0n) throw new SyscallError('mmap', koffi.errno());
  return { address, pointer, length };
}

/**
 * mmap(2) with MAP_FIXED over `length` bytes at `offset` into an existing mapping (e.g.
 * pages of a file or memfd, MAP_PRIVATE, replacing anonymous pages). The replaced range
 * stays part of `mapping`: munmap of the whole mapping releases it. Throws SyscallError.
 */
export function mmapOver(mapping: Mapping, offset: number, length: number, prot: number, flags: number,
  fd: number, fileOffset: number): void {
  if (offset < 0 || length <= 0 || offset + length > mapping.length) {
    throw new RangeError(`mmapOver: [${offset}, ${offset + length}) is outside the mapping of ${mapping.length} bytes`);
  }
  const pointer = mmapAtFn(at(mapping, offset), length, prot, flags | LIBC.MAP_FIXED, fd, fileOffset) as NativePointer;
  const address = pointer === null ? 0n : koffi.address(pointer);
  if (address !== at(mapping, offset)) throw new SyscallError('mmap(MAP_FIXED)', koffi.errno());
}

/** The host address `offset` bytes into a mapping. */
function at(mapping: Mapping, offset: number): bigint {
  return mapping.address + BigInt(offset);
}

/** munmap(2) of a whole mapping. */
export function munmap(mapping: Mapping): void {
  if ((munmapFn(mapping.address, mapping.length) as number) < 0) {
    throw new SyscallError('munmap', koffi.errno());
  }
}

/** Ranges replaced by zero pages (retire) that views may still reach: unmapped once those views are collected. */
const retired = new FinalizationRegistry<{ address: bigint; length: number }>((r) => {
  munmapFn(r.address, r.length);
});

/**
 * Releases a mapping that JavaScript views over `buffer` (a viewOf() result's buffer) may
 * outlive, without letting them fault the process: fresh anonymous zero pages replace it at
 * the same address at once (MAP_FIXED, so its pages, and the file or vCPU behind them, are
 * released now), a stale view then reads zeros and writes where nothing else looks, and the
 * address range itself is unmapped once `buffer` has been collected. Never throws: if the
 * replacement fails, the old pages stay until that collection instead.
 */
export function retire(mapping: Mapping, buffer: ArrayBufferLike): void {
  mmapAtFn(mapping.address, mapping.length, LIBC.PROT_READ | LIBC.PROT_WRITE,
    LIBC.MAP_PRIVATE | LIBC.MAP_ANONYMOUS | LIBC.MAP_NORESERVE | LIBC.MAP_FIXED, -1, 0);
  retired.register(buffer, { address: mapping.address, length: mapping.length });
}

/** mprotect(2) of `length` bytes at `offset` into a mapping. */
export function mprotect(mapping: Mapping, offset: number, length: number, prot: number): void {
  if ((mprotectFn(at(mapping, offset), length, prot) as number) < 0) {
    throw new SyscallError('mprotect', koffi.errno());
  }
}

/** madvise(2) of `length` bytes at `offset` into a mapping (e.g. MADV_DONTNEED to zero). */
export function madvise(mapping: Mapping, offset: number, length: number, advice: number): void {
  if ((madviseFn(at(mapping, offset), length, advice) as number) < 0) {
    throw new SyscallError('madvise', koffi.errno());
  }
}

/**
 * mincore(2) of `length` bytes at `offset` into a mapping (both page-aligned): into `vec`,
 * one byte per page whose bit 0 says whether the page is resident. Throws SyscallError.
 */
export function mincore(mapping: Mapping, offset: number, length: number, vec: Uint8Array): void {
  if (vec.length < Math.ceil(length / 4096)) throw new RangeError(`mincore: ${vec.length} bytes cannot hold ${length / 4096} pages`);
  if ((mincoreFn(at(mapping, offset), length, vec) as number) < 0) {
    throw new SyscallError('mincore', koffi.errno());
  }
}

/** memfd_create(2); returns the fd. */
export function memfdCreate(name: string, flags: number = LIBC.MFD_CLOEXEC): number {
  const fd = memfdCreateFn(name, flags) as number;
  if (fd < 0) throw new SyscallError('memfd_create', koffi.errno());
  return fd;
}

/**
 * A zero-copy view of `length` bytes of a mapping.
 * FFI: the view aliases native memory owned by the mapping; it must not be used after
 * munmap (callers drop their views when they unmap).
 */
export function viewOf(mapping: Mapping, length = mapping.length): Uint8Array {
  return new Uint8Array(koffi.view(mapping.pointer, length));
}

/**
 * A view of `length` bytes at host address `address` of this process: a mapping made by
 * another thread (a worker's view of guest memory or kvm_run).
 * FFI: the caller guarantees that the memory stays mapped while the view is used.
 */
export function viewAtAddress(address: bigint, length: number): Uint8Array {
  const pointer = koffi.decode(new BigUint64Array([address]), 'void *') as NativePointer;
  return new Uint8Array(koffi.view(pointer, length));
}

/**
 * The address of a JS byte array's data, for a kernel struct field that points at a
 * buffer (e.g. kvm_dirty_log.dirty_bitmap).
 * FFI: valid only until JavaScript runs again (a GC may move small arrays): take it right
 * before the synchronous call that uses it.
 */
export function addressOf(bytes: Uint8Array): bigint {
  return koffi.address(bytes);
}

/** This thread's kernel tid (module state is per thread: each worker has its own). */
let ownTid = 0;

/** The kernel thread id of the calling thread (asked of the kernel once per thread). */
export function gettid(): number {
  if (ownTid === 0) ownTid = gettidFn() as number;
  return ownTid;
}

/** sched_yield(2): lets another runnable thread have this CPU (returns at once when none waits). */
export function schedYield(): void {
  schedYieldFn();
}

/** O_NONBLOCK on Linux (x86-64 and arm64). */
const O_NONBLOCK = 0o4000;

/** pipe2(2) with O_CLOEXEC | O_NONBLOCK on both ends: [read end, write end]. Throws SyscallError. */
export function pipe(): [number, number] {
  const fds = [0, 0];
  if ((pipe2Fn(fds, LIBC.O_CLOEXEC | O_NONBLOCK) as number) < 0) throw new SyscallError('pipe2', koffi.errno());
  return [fds[0]!, fds[1]!];
}

/** write(2) of `bytes` (passed without copying), EINTR retried: the count written, or -errno. */
export function write(fd: number, bytes: Uint8Array): number {
  for (;;) {
    const r = writeFn(fd, bytes, bytes.length) as number;
    if (r >= 0) return r;
    const errno = koffi.errno();
    if (errno !== ERRNO.EINTR) return -errno;
  }
}

/** The process id. */
export function getpid(): number {
  return getpidFn() as number;
}

/** Sends `signal` to one thread of this process (tgkill(2)); false if it is gone. */
export function tgkill(pid: number, tid: number, signal: number): boolean {
  return (tgkillFn(pid, tid, signal) as number) === 0;
}

let kickSignal = 0;

/**
 * The signal used to kick a vCPU thread out of KVM_RUN: a real-time signal whose handler
 * is libc's `sched_yield` (async-signal-safe, ignores its argument). A handled signal makes
 * a blocked KVM_RUN return EINTR; SA_RESTART is not set. Installed once per process.
 */
export function vcpuKickSignal(): number {
  if (kickSignal !== 0) return kickSignal;
  const signal = (sigrtmaxFn() as number) - 4;
  if (signal <= (sigrtminFn() as number)) throw new Error('no real-time signal available');
  const act = new Uint8Array(sigaction.size);
  const view = new DataView(act.buffer);
  // FFI: a function pointer into libc, valid for the life of the process.
  const handler = koffi.address(libc.symbol('sched_yield'));
  view.setBigUint64(sigaction.fields.sa_handler[0], handler, true);
  view.setInt32(sigaction.fields.sa_flags[0], 0, true);
  if ((sigactionFn(signal, act, null) as number) < 0) throw new SyscallError('sigaction', koffi.errno());
  kickSignal = signal;
  return signal;
}

// pthread_sigmask's `how` (include/uapi/asm-generic/signal-defs.h) and sizes of the two sigsets.
const SIG_BLOCK = 0;
const SIG_SETMASK = 2;
/** glibc's sigset_t (1024 bits). */
const LIBC_SIGSET_BYTES = 128;
/** The kernel's sigset (64 signals): what KVM_SET_SIGNAL_MASK takes. */
export const KERNEL_SIGSET_BYTES = 8;

function sigsetOf(signal: number): Uint8Array {
  const set = new Uint8Array(LIBC_SIGSET_BYTES);
  set[(signal - 1) >> 3]! |= 1 << ((signal - 1) & 7);
  return set;
}

/** Whether this thread blocks the kick signal already (per thread, like ownTid). */
let kickBlocked = false;

/**
 * Blocks the kick signal on the calling thread (once per thread). A kick that arrives
 * while the thread is outside KVM_RUN then stays pending instead of being handled and
 * lost: the vCPU's own signal mask (kickableSignalMask) unblocks it inside KVM_RUN, so the
 * next entry returns EINTR at once. Nothing else in the thread ever sees the signal.
 */
export function blockKickSignal(): void {
  if (kickBlocked) return;
  if ((pthreadSigmaskFn(SIG_BLOCK, sigsetOf(vcpuKickSignal()), null) as number) !== 0) {
    throw new SyscallError('pthread_sigmask', koffi.errno());
  }
  kickBlocked = true;
}

/**
 * The signal mask a vCPU runs with (KVM_SET_SIGNAL_MASK's kernel sigset): the calling
 * thread's mask with the kick signal unblocked.
 */
export function kickableSignalMask(): Uint8Array {
  const current = new Uint8Array(LIBC_SIGSET_BYTES);
  if ((pthreadSigmaskFn(SIG_SETMASK, null, current) as number) !== 0) {
    throw new SyscallError('pthread_sigmask', koffi.errno());
  }
  const signal = vcpuKickSignal();
  const mask = current.slice(0, KERNEL_SIGSET_BYTES);
  mask[(signal - 1) >> 3]! &= ~(1 << ((signal - 1) & 7));
  return mask;
}

let kickSet: Uint8Array | undefined;
const zeroTimeout = new Uint8Array(16);

/**
 * Takes every pending kick signal off the calling thread (sigtimedwait with a zero
 * timeout) and returns how many there were. A kick that ended KVM_RUN stays pending after
 * it (the thread blocks it outside KVM_RUN): without this the next entry would return at
 * once again.
 */
export function consumeKicks(): number {
  if (!kickBlocked) return 0;
  kickSet ??= sigsetOf(vcpuKickSignal());
  let n = 0;
  while ((sigtimedwaitFn(kickSet, null, zeroTimeout) as number) > 0) n++;
  return n;
}

/** Told of every POSIX timer a ThreadTimer on this thread creates (live) or deletes. */
let timerWatch: ((id: number, live: boolean) => void) | undefined;

/**
 * Reports each timer this thread's ThreadTimers create or delete to `watch`: an async worker
 * keeps the ids where the main thread can delete them if the worker is terminated (a POSIX
 * timer belongs to the process and outlives the thread it signals).
 */
export function watchThreadTimers(watch: (id: number, live: boolean) => void): void {
  timerWatch = watch;
}

/** A POSIX timer that signals one thread (timer_create with SIGEV_THREAD_ID). */
export class ThreadTimer {
  private id: bigint;
  private readonly spec = new Uint8Array(itimerspec.size);
  private readonly specView = new DataView(this.spec.buffer);

  /** Creates a timer that sends `signal` to thread `tid` (of this process). */
  constructor(tid: number, signal: number) {
    const sev = new Uint8Array(sigevent.size);
    const view = new DataView(sev.buffer);
    view.setInt32(sigevent.fields.sigev_signo[0], signal, true);
    view.setInt32(sigevent.fields.sigev_notify[0], LIBC.SIGEV_THREAD_ID, true);
    view.setInt32(sigevent.fields.sigev_notify_thread_id[0], tid, true);
    const out = new Uint8Array(8);
    if ((timerCreateFn(LIBC.CLOCK_MONOTONIC, sev, out) as number) < 0) {
      throw new SyscallError('timer_create', koffi.errno());
    }
    this.id = new DataView(out.buffer).getBigInt64(0, true);
    timerWatch?.(Number(this.id), true);
  }

  /** Arms the timer: first expiry after `firstNs`, then every `intervalNs` (0: once). */
  arm(firstNs: number, intervalNs = 0): void {
    const f = itimerspec.fields;
    const first = firstNs <= 0 ? 1 : firstNs; // 0 would disarm
    this.specView.setBigInt64(f['it_value.tv_sec'][0], BigInt(Math.floor(first / 1e9)), true);
    this.specView.setBigInt64(f['it_value.tv_nsec'][0], BigInt(Math.floor(first % 1e9)), true);
    this.specView.setBigInt64(f['it_interval.tv_sec'][0], BigInt(Math.floor(intervalNs / 1e9)), true);
    this.specView.setBigInt64(f['it_interval.tv_nsec'][0], BigInt(Math.floor(intervalNs % 1e9)), true);
    if ((timerSettimeFn(this.id, 0, this.spec, null) as number) < 0) {
      throw new SyscallError('timer_settime', koffi.errno());
    }
  }

  /** Stops the timer. */
  disarm(): void {
    this.spec.fill(0);
    if ((timerSettimeFn(this.id, 0, this.spec, null) as number) < 0) {
      throw new SyscallError('timer_settime', koffi.errno());
    }
  }

  /** The kernel's id of the timer (what deleteOrphanedTimer takes), -1 once closed. */
  get timerId(): number {
    return Number(this.id);
  }

  /** Deletes the timer; idempotent. */
  close(): void {
    if (this.id === -1n) return;
    timerDeleteFn(this.id);
    timerWatch?.(Number(this.id), false);
    this.id = -1n;
  }
}

/**
 * Deletes a timer of this process by id: the timer of a thread that was terminated before it
 * could delete it (a POSIX timer belongs to the process and outlives its target thread).
 * Returns false if there was no such timer.
 */
export function deleteOrphanedTimer(id: number): boolean {
  return (timerDeleteFn(id) as number) === 0;
}

// Signals the library can watch for the application (include/uapi/asm-generic/signal.h).
export const SIGINT = 2;
export const SIGTERM = 15;

/**
 * The handler that records SIGINT/SIGTERM for the run loop: 27 bytes of x86-64 code of our
 * own, `flags[sig & 63] = 1; return` (endbr64; mov edi, edi; and edi, 63; movabs rax, flags;
 * mov dword [rax + rdi*4], 1; ret), alone on a page made read+execute once it is written,
 * with the 64 int32 flags on a page of their own. One store: async-signal-safe from any
 * thread, and nothing else in the process changes. Made on first use, kept for the life of
 * the process; undefined where it cannot be (not x86-64, or no executable memory).
 */
let recorder: { handler: bigint; flags: Int32Array } | null | undefined = null;

function signalRecorder(): { handler: bigint; flags: Int32Array } | undefined {
  if (recorder !== null) return recorder;
  recorder = undefined;
  if (process.arch !== 'x64') return undefined;
  const pages = mmap(2 * 4096, LIBC.PROT_READ | LIBC.PROT_WRITE, LIBC.MAP_PRIVATE | LIBC.MAP_ANONYMOUS);
  const flagsAddress = pages.address + 4096n;
  const code = new Uint8Array(27);
  code.set([0xf3, 0x0f, 0x1e, 0xfa, 0x89, 0xff, 0x83, 0xe7, 0x3f, 0x48, 0xb8], 0);
  new DataView(code.buffer).setBigUint64(11, flagsAddress, true);
  code.set([0xc7, 0x04, 0xb8, 0x01, 0x00, 0x00, 0x00, 0xc3], 19);
  // FFI: both pages belong to the recorder for the life of the process (never unmapped).
  const bytes = viewOf(pages);
  bytes.set(code, 0);
  if ((mprotectFn(pages.address, 4096, LIBC.PROT_READ | LIBC.PROT_EXEC) as number) < 0) return undefined;
  recorder = { handler: pages.address, flags: new Int32Array(bytes.buffer, 4096, 64) };
  return recorder;
}

/**
 * Makes the recording handler (signalRecorder) the handler of `signal`, its flag cleared;
 * the previous sigaction goes into `saved` (sigaction.size bytes). False, with nothing
 * changed, where the handler cannot exist. No SA_RESTART: a blocked KVM_RUN returns EINTR.
 */
export function recordSignal(signal: number, saved: Uint8Array): boolean {
  const r = signalRecorder();
  if (!r) return false;
  Atomics.store(r.flags, signal & 63, 0);
  const act = new Uint8Array(sigaction.size);
  const view = new DataView(act.buffer);
  view.setBigUint64(sigaction.fields.sa_handler[0], r.handler, true);
  view.setInt32(sigaction.fields.sa_flags[0], 0, true);
  if ((sigactionFn(signal, act, saved) as number) < 0) throw new SyscallError('sigaction', koffi.errno());
  return true;
}

/** Whether `signal` arrived since recordSignal installed the handler or this last said so (clears the flag). */
export function takeRecordedSignal(signal: number): boolean {
  return recorder ? Atomics.exchange(recorder.flags, signal & 63, 0) !== 0 : false;
}

/** Puts back a sigaction saved by recordSignal. */
export function restoreSigaction(signal: number, saved: Uint8Array): void {
  if ((sigactionFn(signal, saved, null) as number) < 0) throw new SyscallError('sigaction', koffi.errno());
}

// ---- blocking TCP on loopback (the gdb stub serves gdb on the vCPU's own thread) ------

const AF_INET = 2;
const SOCK_STREAM = 1;
const SOCK_CLOEXEC = 0x80000;
const SOL_SOCKET = 1;
const SO_REUSEADDR = 2;
const IPPROTO_TCP = 6;
const TCP_NODELAY = 1;
const MSG_NOSIGNAL = 0x4000;

/** Calls `fn` again while it fails with EINTR (a vCPU kick or a timer signal landed). */
function retryEintr(fn: () => number): number {
  for (;;) {
    const r = fn();
    if (r >= 0 || koffi.errno() !== ERRNO.EINTR) return r;
  }
}

/**
 * A blocking TCP socket listening on 127.0.0.1:`port` (SO_REUSEADDR), close-on-exec.
 * @throws SyscallError (EADDRINUSE when the port is taken).
 */
export function listenLoopback(port: number): number {
  const fd = socketFn(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0) as number;
  if (fd < 0) throw new SyscallError('socket(AF_INET)', koffi.errno());
  try {
    const one = new Uint8Array(4);
    new DataView(one.buffer).setInt32(0, 1, true);
    if ((setsockoptFn(fd, SOL_SOCKET, SO_REUSEADDR, one, 4) as number) < 0) throw new SyscallError('setsockopt(SO_REUSEADDR)', koffi.errno());
    const addr = new Uint8Array(16); // sockaddr_in: family, port (big-endian), 127.0.0.1
    const v = new DataView(addr.buffer);
    v.setUint16(0, AF_INET, true);
    v.setUint16(2, port, false);
    v.setUint32(4, 0x7f00_0001, false);
    if ((bindFn(fd, addr, 16) as number) < 0) throw new SyscallError(`bind(127.0.0.1:${port})`, koffi.errno());
    if ((listenFn(fd, 1) as number) < 0) throw new SyscallError('listen', koffi.errno());
    return fd;
  } catch (e) {
    closeFn(fd);
    throw e;
  }
}

/** Waits for one connection on `fd` (blocking); returns the connected socket, with TCP_NODELAY. */
export function acceptBlocking(fd: number): number {
  const c = retryEintr(() => acceptFn(fd, null, null, SOCK_CLOEXEC) as number);
  if (c < 0) throw new SyscallError('accept', koffi.errno());
  const one = new Uint8Array(4);
  new DataView(one.buffer).setInt32(0, 1, true);
  setsockoptFn(c, IPPROTO_TCP, TCP_NODELAY, one, 4);
  return c;
}

/** Reads what is there into `buf` (blocking until something is); 0 at end of stream. */
export function recvBlocking(fd: number, buf: Uint8Array): number {
  const n = retryEintr(() => Number(recvFn(fd, buf, buf.length, 0)));
  if (n < 0) throw new SyscallError('recv', koffi.errno());
  return n;
}

/** Sends all of `bytes` (blocking; no SIGPIPE: a closed peer is EPIPE). */
export function sendAll(fd: number, bytes: Uint8Array): void {
  let off = 0;
  while (off < bytes.length) {
    const rest = bytes.subarray(off);
    const n = retryEintr(() => Number(sendFn(fd, rest, rest.length, MSG_NOSIGNAL)));
    if (n < 0) throw new SyscallError('send', koffi.errno());
    off += n;
  }
}
