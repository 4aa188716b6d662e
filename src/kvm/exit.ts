// Decodes kvm_run after KVM_RUN into a discriminated union of exits: the one place that
// reads kvm_run's exit fields. Exit objects are preallocated and reused (no allocation per
// run); an exit is valid until the next decode. Exit data is copied into JavaScript memory,
// so no exit object aliases kvm_run: one kept past the vCPU's close() cannot fault.
import * as C from './constants.js';
import { kvm_run } from './layouts.generated.js';

export interface IoExit {
  kind: 'io';
  direction: 'in' | 'out';
  port: number;
  /** Bytes per access (1, 2 or 4). */
  size: number;
  count: number;
  /** The data, `size * count` bytes, a copy (write it for `in`: run() hands it to KVM). */
  data: Uint8Array;
}
export interface MmioExit {
  kind: 'mmio';
  isWrite: boolean;
  /** The guest-physical address (made on each read: the run loop uses `gpa`). */
  readonly address: bigint;
  /** The same address as a number (exact: guest-physical addresses have at most 52 bits). */
  gpa: number;
  length: number;
  data: Uint8Array;
}
export interface HltExit { kind: 'hlt' }
export interface ShutdownExit { kind: 'shutdown' }
export interface InterruptedExit { kind: 'interrupted' }
export interface InternalErrorExit { kind: 'internal-error'; suberror: number; ndata: number }
export interface FailEntryExit { kind: 'fail-entry'; hardwareReason: bigint; cpu: number }
export interface DebugExit { kind: 'debug'; exception: number; pc: bigint; dr6: bigint; dr7: bigint }
export interface SystemEventExit { kind: 'system-event'; type: number }
export interface UnknownExit { kind: 'unknown'; reason: number; name: string; hardwareReason: bigint }

export type VcpuExit = IoExit | MmioExit | HltExit | ShutdownExit | InterruptedExit |
  InternalErrorExit | FailEntryExit | DebugExit | SystemEventExit | UnknownExit;

const F = kvm_run.fields;

/** Decodes one kvm_run area (a real mapping or synthetic bytes in tests). */
export class ExitDecoder {
  private readonly view: DataView;
  private readonly io: IoExit;
  private readonly mmio: MmioExit;
  private readonly hlt: HltExit = { kind: 'hlt' };
  private readonly shutdown: ShutdownExit = { kind: 'shutdown' };
  private readonly interrupted: InterruptedExit = { kind: 'interrupted' };
  private readonly internal: InternalErrorExit = { kind: 'internal-error', suberror: 0, ndata: 0 };
  private readonly failEntry: FailEntryExit = { kind: 'fail-entry', hardwareReason: 0n, cpu: 0 };
  private readonly debug: DebugExit = { kind: 'debug', exception: 0, pc: 0n, dr6: 0n, dr7: 0n };
  private readonly systemEvent: SystemEventExit = { kind: 'system-event', type: 0 };
  private readonly unknown: UnknownExit = { kind: 'unknown', reason: 0, name: '', hardwareReason: 0n };
  private ioDataOffset = -1;
  private ioDataLength = -1;
  private readonly empty: Uint8Array;
  /** Where the current io data lies in kvm_run (a cached native view). */
  private ioSource: Uint8Array;
  /** JavaScript memory the io data is copied into (grown when a longer string I/O needs it). */
  private ioCopy = new Uint8Array(64);
  private readonly mmioSource: Uint8Array;
  /** Data KVM must get back before the next run: an IN, or an MMIO read. */
  private pendingIn: 'io' | 'mmio' | undefined;

  /**
   * @param bytes the whole vCPU mapping (kvm_run plus the pages after it that io
   *   data_offset points into). FFI: when it aliases a vCPU mmap, the decoder must not be
   *   used after the vCPU is closed.
   */
  constructor(private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.empty = new Uint8Array(0);
    this.ioSource = this.empty;
    this.io = { kind: 'io', direction: 'out', port: 0, size: 0, count: 0, data: this.empty };
    // FFI: a view of kvm_run's mmio.data (8 bytes), used only while the vCPU is open.
    this.mmioSource = bytes.subarray(F['mmio.data'][0], F['mmio.data'][0] + F['mmio.data'][1]);
    const mmio = { kind: 'mmio' as const, isWrite: false, gpa: 0, length: 0, data: new Uint8Array(this.mmioSource.length) };
    // No bigint per exit: `address` is made from `gpa` only when someone reads it.
    this.mmio = Object.defineProperty(mmio, 'address', { get: () => BigInt(mmio.gpa), enumerable: true }) as MmioExit;
  }

  /**
   * Gives KVM the data the caller wrote for the last exit (an IN's or an MMIO read's), so
   * that it completes the instruction with it. Call right before the next KVM_RUN.
   */
  commitInput(): void {
    if (this.pendingIn === 'io') this.ioSource.set(this.io.data);
    else if (this.pendingIn === 'mmio') this.mmioSource.set(this.mmio.data);
    this.pendingIn = undefined;
  }

  /** The exit after KVM_RUN returned `result` (0, or -errno). */
  decode(result: number): VcpuExit {
    this.pendingIn = undefined;
    if (result < 0) return this.interrupted; // caller has checked it is EINTR
    const v = this.view;
    const reason = v.getUint32(F.exit_reason[0], true);
    switch (reason) {
      case C.KVM_EXIT_IO: return this.decodeIo();
      case C.KVM_EXIT_HLT: return this.hlt;
      case C.KVM_EXIT_MMIO: {
        const m = this.mmio;
        m.gpa = v.getUint32(F['mmio.phys_addr'][0] + 4, true) * 0x1_0000_0000 + v.getUint32(F['mmio.phys_addr'][0], true);
        m.length = Math.min(v.getUint32(F['mmio.len'][0], true), 8);
        m.isWrite = v.getUint8(F['mmio.is_write'][0]) !== 0;
        m.data.set(this.mmioSource);
        if (!m.isWrite) this.pendingIn = 'mmio';
        return m;
      }
      case C.KVM_EXIT_SHUTDOWN: return this.shutdown;
      case C.KVM_EXIT_INTR: return this.interrupted;
      case C.KVM_EXIT_INTERNAL_ERROR:
        this.internal.suberror = v.getUint32(F['internal.suberror'][0], true);
        this.internal.ndata = v.getUint32(F['internal.ndata'][0], true);
        return this.internal;
      case C.KVM_EXIT_FAIL_ENTRY:
        this.failEntry.hardwareReason = v.getBigUint64(F['fail_entry.hardware_entry_failure_reason'][0], true);
        this.failEntry.cpu = v.getUint32(F['fail_entry.cpu'][0], true);
        return this.failEntry;
      case C.KVM_EXIT_DEBUG:
        this.debug.exception = v.getUint32(F['debug.arch.exception'][0], true);
        this.debug.pc = v.getBigUint64(F['debug.arch.pc'][0], true);
        this.debug.dr6 = v.getBigUint64(F['debug.arch.dr6'][0], true);
        this.debug.dr7 = v.getBigUint64(F['debug.arch.dr7'][0], true);
        return this.debug;
      case C.KVM_EXIT_SYSTEM_EVENT:
        this.systemEvent.type = v.getUint32(F['system_event.type'][0], true);
        return this.systemEvent;
      default:
        this.unknown.reason = reason;
        this.unknown.name = C.EXIT_REASON_NAMES[reason] ?? `exit reason ${reason}`;
        this.unknown.hardwareReason = v.getBigUint64(F['hw.hardware_exit_reason'][0], true);
        return this.unknown;
    }
  }

  private decodeIo(): IoExit {
    const v = this.view;
    const io = this.io;
    io.direction = v.getUint8(F['io.direction'][0]) === C.KVM_EXIT_IO_OUT ? 'out' : 'in';
    io.size = v.getUint8(F['io.size'][0]);
    io.port = v.getUint16(F['io.port'][0], true);
    io.count = v.getUint32(F['io.count'][0], true);
    const offset = Number(v.getBigUint64(F['io.data_offset'][0], true));
    const length = io.size * io.count;
    if (offset !== this.ioDataOffset || length !== this.ioDataLength) {
      // The kernel puts the data inside the vCPU mapping; check anyway, and make a new
      // view only when the place changes (in practice: once).
      const ok = offset >= kvm_run.size && length <= this.bytes.length - offset;
      // FFI: a view into the vCPU mapping, kept inside the decoder (never handed out).
      this.ioSource = ok ? this.bytes.subarray(offset, offset + length) : this.empty;
      if (this.ioSource.length > this.ioCopy.length) this.ioCopy = new Uint8Array(this.ioSource.length);
      io.data = this.ioCopy.subarray(0, this.ioSource.length);
      this.ioDataOffset = offset;
      this.ioDataLength = length;
    }
    io.data.set(this.ioSource);
    if (io.direction === 'in') this.pendingIn = 'io';
    return io;
  }
}
