// The snapshot file format (docs/snapshot-format.md): encoding a snapshot's contents to bytes and decoding hostile bytes back, every field checked. No file I/O, no KVM.
import zlib from 'node:zlib';
import { kvm_regs, kvm_sregs, kvm_xsave } from '../kvm/layouts.generated.js';
import { decodeRegs, decodeSregs, sregsToBytes } from '../kvm/structs.js';
import { PAGE_SIZE } from '../mem/guest-memory.js';
import { MemorySnapshot } from '../mem/snapshot.js';
import {
  type ImageSegmentPerms, type LayoutConfig, type MemoryLayout, buildPageTables, mappedRangesFor, planLayout,
} from '../mem/x86_64/index.js';
import * as X from '../x86_64/index.js';
import { MAPPED_REGION_ENTRY_SIZE, MAPPED_REGIONS_MAX, PEB_OFF_RANDOM_SEED, PEB_OFF_REGIONS, writePeb } from './abi.js';
import { pebFieldsOf } from './machine.js';
import { SnapshotFileError, SnapshotIncompatibleError } from './errors.js';
import { type GuestCpuState, guestCpuState } from './vcpu-state.js';

/** "HLTSSNAP": the first 8 bytes of every snapshot file. */
export const SNAPSHOT_MAGIC = 0x50414e5353544c48n;
/**
 * The format version this library writes and reads. 2: a static PIE's image starts on a
 * 32 KiB boundary (IMAGE_ALIGN), so the same layout metadata plans other addresses than in
 * version 1.
 */
export const SNAPSHOT_FORMAT_VERSION = 2;

// Fixed header offsets (all little-endian).
const OFF_MAGIC = 0;
const OFF_VERSION = 8;
const OFF_FLAGS = 12;
const OFF_FILE_LENGTH = 16;
const OFF_META_LENGTH = 24;
const OFF_MEMORY_PAGES = 28;
const OFF_STORED_PAGES = 32;
const OFF_DATA_OFFSET = 40;
const OFF_BINARY_HASH = 48;
const OFF_REGS = 80;
const OFF_SREGS = OFF_REGS + kvm_regs.size;
const OFF_XSAVE = OFF_SREGS + kvm_sregs.size;
/** Where the metadata JSON starts. */
export const OFF_META = OFF_XSAVE + kvm_xsave.size;
/** The trailer: CRC-32 (IEEE, zlib's) of every byte before it. */
const HASH_SIZE = 4;
const BINARY_HASH_SIZE = 32;
const MAX_META_LENGTH = 0x10000;
const MAX_SEGMENTS = 64;
/** RFLAGS bits ring 3 can change (CF PF AF ZF SF TF DF OF AC ID; SDM Vol. 1 §3.4.3); bit 1 is always set. */
const USER_RFLAGS = 0x0024_0dd5n;

/** What a snapshot holds besides memory and CPU state: enough to build a sandbox from it. */
export interface SnapshotSource {
  /** What the layout was planned from. */
  readonly layoutConfig: Required<Omit<LayoutConfig, 'image'>> & { readonly image: { readonly span: number; readonly fixedBase?: number } };
  readonly layout: MemoryLayout;
  /** The image's segments (their page permissions). */
  readonly segments: readonly ImageSegmentPerms[];
  /** SHA-256 of the guest ELF, hex (a function: computed only when a file is written). */
  readonly binaryHash: () => string;
  readonly dispatch: bigint;
  readonly cr3: bigint;
  readonly entry: bigint;
  /** The sandbox's per-call time limit in milliseconds (0: none). */
  readonly maxExecutionTimeMs: number;
}

/** A snapshot's parts as the file holds them. */
export interface SnapshotContents {
  readonly source: SnapshotSource;
  readonly cpu: GuestCpuState;
  readonly memory: MemorySnapshot;
}

/** A decoded file: the contents, with the page data still inside the file's bytes. */
export interface DecodedSnapshot {
  readonly source: SnapshotSource;
  readonly cpu: GuestCpuState;
  /** Page i's offset in the stored data, or -1 for a zero page. */
  readonly pageOffsets: Int32Array;
  /** Where the stored pages start in the file, and how many bytes they take. */
  readonly dataOffset: number;
  readonly dataLength: number;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const hex = (n: bigint): string => `0x${n.toString(16)}`;

/** Encodes a snapshot as one file image (header, metadata, page index, pages, CRC-32). */
export function encodeSnapshotFile(c: SnapshotContents): Uint8Array {
  const { source, cpu, memory } = c;
  const meta = new TextEncoder().encode(JSON.stringify({
    layout: source.layoutConfig,
    segments: source.segments.map((s) => ({
      offsetInImage: s.offsetInImage, memSize: s.memSize, writable: s.writable, executable: s.executable,
    })),
    dispatch: hex(source.dispatch), cr3: hex(source.cr3), entry: hex(source.entry),
    maxExecutionTimeMs: source.maxExecutionTimeMs,
  }));
  const pages = memory.size / PAGE_SIZE;
  const data = memory.storedData;
  const dataOffset = pageAlign(OFF_META + meta.length + 4 * pages);
  const length = dataOffset + data.length + HASH_SIZE;
  const out = new Uint8Array(length);
  const v = new DataView(out.buffer);
  v.setBigUint64(OFF_MAGIC, SNAPSHOT_MAGIC, true);
  v.setUint32(OFF_VERSION, SNAPSHOT_FORMAT_VERSION, true);
  v.setUint32(OFF_FLAGS, 0, true);
  v.setBigUint64(OFF_FILE_LENGTH, BigInt(length), true);
  v.setUint32(OFF_META_LENGTH, meta.length, true);
  v.setUint32(OFF_MEMORY_PAGES, pages, true);
  v.setUint32(OFF_STORED_PAGES, data.length / PAGE_SIZE, true);
  v.setBigUint64(OFF_DATA_OFFSET, BigInt(dataOffset), true);
  out.set(Buffer.from(source.binaryHash(), 'hex'), OFF_BINARY_HASH);
  out.set(cpu.regsBytes, OFF_REGS);
  out.set(cpu.sregsBytes, OFF_SREGS);
  out.set(cpu.xsave, OFF_XSAVE);
  out.set(meta, OFF_META);
  const index = OFF_META + meta.length;
  for (let p = 0; p < pages; p++) {
    const at = memory.pageOffset(p);
    v.setUint32(index + 4 * p, at < 0 ? 0 : at / PAGE_SIZE + 1, true);
  }
  out.set(data, dataOffset);
  v.setUint32(length - HASH_SIZE, crc32(out.subarray(0, length - HASH_SIZE)), true);
  return out;
}

function pageAlign(n: number): number {
  return Math.ceil(n / PAGE_SIZE) * PAGE_SIZE;
}

/** CRC-32 as zlib computes it (zlib.crc32 from Node 20.15; a table otherwise). */
export function crc32(bytes: Uint8Array): number {
  const native = (zlib as { crc32?: (b: Uint8Array) => number }).crc32;
  if (native) return native(bytes);
  let c = ~0;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

const CRC_TABLE = Int32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c;
});

const corrupt = (msg: string, cause?: unknown): SnapshotFileError =>
  new SnapshotFileError('corrupt', msg, cause === undefined ? undefined : { cause });

/**
 * Decodes and validates a snapshot file image. Everything is checked before use: the
 * magic, the version, the lengths, the SHA-256, the metadata (re-planned into a layout),
 * the page index, the host-owned pages (page tables, system area, PEB: they must be what
 * this host would write) and the registers (RFLAGS a ring-3 guest can reach).
 * @throws SnapshotFileError (`reason` truncated, corrupt or checksum) for a damaged file,
 *   SnapshotIncompatibleError for another format version or a layout this version plans
 *   differently.
 */
export function decodeSnapshotFile(bytes: Uint8Array): DecodedSnapshot {
  if (bytes.length < OFF_META + 4 * 4 + HASH_SIZE) {
    throw new SnapshotFileError('truncated', `${bytes.length} bytes is shorter than a snapshot header`);
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  if (v.getBigUint64(OFF_MAGIC, true) !== SNAPSHOT_MAGIC) throw corrupt('not a hyperlight-ts snapshot file (bad magic)');
  const version = v.getUint32(OFF_VERSION, true);
  if (version !== SNAPSHOT_FORMAT_VERSION) {
    throw new SnapshotIncompatibleError(`snapshot file format version ${version}; this library reads version ${SNAPSHOT_FORMAT_VERSION}`);
  }
  const fileLength = v.getBigUint64(OFF_FILE_LENGTH, true);
  if (fileLength > BigInt(bytes.length)) {
    throw new SnapshotFileError('truncated', `the header says ${fileLength} bytes, the file has ${bytes.length}`);
  }
  if (fileLength !== BigInt(bytes.length)) throw corrupt(`the header says ${fileLength} bytes, the file has ${bytes.length}`);
  const body = bytes.subarray(0, bytes.length - HASH_SIZE);
  if (crc32(body) !== v.getUint32(body.length, true)) {
    throw new SnapshotFileError('checksum', 'the CRC-32 at the end of the file does not match its contents');
  }
  if (v.getUint32(OFF_FLAGS, true) !== 0) throw corrupt('unknown flags');
  const metaLength = v.getUint32(OFF_META_LENGTH, true);
  const memoryPages = v.getUint32(OFF_MEMORY_PAGES, true);
  const storedPages = v.getUint32(OFF_STORED_PAGES, true);
  const dataOffset = Number(v.getBigUint64(OFF_DATA_OFFSET, true));
  if (metaLength > MAX_META_LENGTH) throw corrupt(`metadata of ${metaLength} bytes (at most ${MAX_META_LENGTH})`);
  if (storedPages > memoryPages) throw corrupt(`${storedPages} stored pages of ${memoryPages}`);
  const indexAt = OFF_META + metaLength;
  if (dataOffset !== pageAlign(indexAt + 4 * memoryPages) || dataOffset + storedPages * PAGE_SIZE !== body.length) {
    throw corrupt('page index and page data do not fill the file as the header says');
  }
  let metaText: string;
  try {
    metaText = utf8.decode(bytes.subarray(OFF_META, indexAt));
  } catch (e) {
    throw corrupt('metadata is not UTF-8', e);
  }
  const source = decodeMetadata(metaText, bytes.subarray(OFF_BINARY_HASH, OFF_BINARY_HASH + BINARY_HASH_SIZE));
  if (source.layout.totalSize !== memoryPages * PAGE_SIZE) {
    throw corrupt(`${memoryPages} memory pages, the layout has ${source.layout.totalSize / PAGE_SIZE}`);
  }
  const pageOffsets = decodeIndex(v, indexAt, memoryPages, storedPages);
  for (let i = indexAt + 4 * memoryPages; i < dataOffset; i++) if (bytes[i] !== 0) throw corrupt('padding is not zero');
  const data = bytes.subarray(dataOffset, dataOffset + storedPages * PAGE_SIZE);
  checkHostPages(source, metaText, pageOffsets, data);
  const cpu = decodeCpu(bytes);
  return { source, cpu, pageOffsets, dataOffset, dataLength: data.length };
}

function decodeIndex(v: DataView, at: number, pages: number, stored: number): Int32Array {
  const offsets = new Int32Array(pages);
  let next = 1;
  for (let p = 0; p < pages; p++) {
    const k = v.getUint32(at + 4 * p, true);
    if (k === 0) { offsets[p] = -1; continue; }
    if (k !== next) throw corrupt(`page index entry ${p} is ${k}, expected 0 or ${next}`);
    offsets[p] = (next - 1) * PAGE_SIZE;
    next++;
  }
  if (next - 1 !== stored) throw corrupt(`the page index names ${next - 1} stored pages, the header ${stored}`);
  return offsets;
}

type Json = Record<string, unknown>;

function field(o: Json, name: string): unknown {
  if (!Object.hasOwn(o, name)) throw corrupt(`metadata has no ${name}`);
  return o[name];
}

function int(o: Json, name: string, max = 2 ** 40): number {
  const x = field(o, name);
  if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < 0 || x > max) throw corrupt(`metadata ${name} is not an integer in range`);
  return x;
}

function bool(o: Json, name: string): boolean {
  const x = field(o, name);
  if (typeof x !== 'boolean') throw corrupt(`metadata ${name} is not a boolean`);
  return x;
}

function address(o: Json, name: string): bigint {
  const x = field(o, name);
  if (typeof x !== 'string' || !/^0x[0-9a-f]{1,16}$/.test(x)) throw corrupt(`metadata ${name} is not a hex address`);
  return BigInt(x);
}

function object(x: unknown, what: string): Json {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) throw corrupt(`metadata ${what} is not an object`);
  return x as Json;
}

function decodeMetadata(text: string, hash: Uint8Array): SnapshotSource {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw corrupt('metadata is not JSON', e);
  }
  const meta = object(parsed, 'root');
  const l = object(field(meta, 'layout'), 'layout');
  const img = object(field(l, 'image'), 'layout.image');
  const image = Object.hasOwn(img, 'fixedBase')
    ? { span: int(img, 'span'), fixedBase: int(img, 'fixedBase') } : { span: int(img, 'span') };
  const layoutConfig = {
    heapSize: int(l, 'heapSize'), stackSize: int(l, 'stackSize'), inputDataSize: int(l, 'inputDataSize'),
    outputDataSize: int(l, 'outputDataSize'), exceptionStackSize: int(l, 'exceptionStackSize'),
    initDataSize: int(l, 'initDataSize'), image,
  };
  let layout: MemoryLayout;
  try {
    layout = planLayout(layoutConfig);
  } catch (e) {
    throw corrupt(`metadata layout is invalid: ${(e as Error).message}`, e);
  }
  const segs = field(meta, 'segments');
  if (!Array.isArray(segs) || segs.length === 0 || segs.length > MAX_SEGMENTS) throw corrupt('metadata segments is not a list of 1..64');
  const segments = segs.map((s: unknown, i) => {
    const o = object(s, `segments[${i}]`);
    return Object.freeze({
      offsetInImage: int(o, 'offsetInImage'), memSize: int(o, 'memSize'),
      writable: bool(o, 'writable'), executable: bool(o, 'executable'),
    });
  });
  const dispatch = address(meta, 'dispatch');
  const entry = address(meta, 'entry');
  const cr3 = address(meta, 'cr3');
  if (cr3 !== BigInt(layout.pageTables.gpa)) throw corrupt(`cr3 ${hex(cr3)} is not the page-table area`);
  for (const [name, at] of [['dispatch', dispatch], ['entry', entry]] as const) {
    const off = Number(at - BigInt(layout.image.gpa));
    if (!segments.some((s) => s.executable && off >= s.offsetInImage && off < s.offsetInImage + s.memSize)) {
      throw corrupt(`${name} ${hex(at)} is not in an executable segment`);
    }
  }
  const maxExecutionTimeMs = int(meta, 'maxExecutionTimeMs', 24 * 3600 * 1000);
  const binaryHash = Buffer.from(hash).toString('hex');
  return Object.freeze({
    layoutConfig, layout, segments: Object.freeze(segments), binaryHash: () => binaryHash, dispatch, cr3, entry,
    maxExecutionTimeMs,
  });
}

/** Host-owned pages by metadata text: loading many snapshots of one guest builds them once. */
const hostPageCache = new Map<string, Uint8Array>();

/** The host-owned pages as this host writes them for `source`: page tables, system area, PEB. */
function hostPages(source: SnapshotSource): Uint8Array {
  const { layout } = source;
  const end = layout.peb.gpa + PAGE_SIZE;
  const scratch = new Uint8Array(end);
  let ranges;
  try {
    ranges = mappedRangesFor(layout, source.segments);
    buildPageTables(ranges, layout.pageTables, scratch.subarray(layout.pageTables.gpa, layout.pageTables.gpa + layout.pageTables.size));
  } catch (e) {
    throw corrupt(`metadata segments do not map: ${(e as Error).message}`, e);
  }
  X.writeSystemArea(scratch, {
    tables: layout.sysTables.gpa, code: layout.sysCode.gpa,
    exceptionStackTop: layout.exceptionStack.gpa + layout.exceptionStack.size,
  });
  writePeb(new DataView(scratch.buffer), layout.peb.gpa, pebFieldsOf(layout));
  return scratch;
}

/**
 * The pages below the guest's own memory (page tables, GDT/TSS/IDT, the CPL0 stubs and
 * their stack) and the PEB's fields must be byte for byte what this host writes: a file
 * cannot hand the guest its own page tables or ring 0.
 */
function checkHostPages(source: SnapshotSource, metaText: string, pageOffsets: Int32Array, data: Uint8Array): void {
  let expected = hostPageCache.get(metaText);
  if (!expected) {
    expected = hostPages(source);
    if (hostPageCache.size >= 8) hostPageCache.clear();
    hostPageCache.set(metaText, expected);
  }
  const pebAt = source.layout.peb.gpa;
  const zero = new Uint8Array(PAGE_SIZE);
  for (let p = 0; p * PAGE_SIZE <= pebAt; p++) {
    const at = pageOffsets[p]!;
    const got = at < 0 ? zero : data.subarray(at, at + PAGE_SIZE);
    const want = expected.subarray(p * PAGE_SIZE, (p + 1) * PAGE_SIZE);
    // The PEB's fields up to its random seed (guest entropy, different in every sandbox).
    const n = p * PAGE_SIZE === pebAt ? PEB_OFF_RANDOM_SEED : PAGE_SIZE;
    if (!Buffer.from(got.buffer, got.byteOffset, n).equals(want.subarray(0, n))) {
      throw corrupt(`host-owned page at 0x${(p * PAGE_SIZE).toString(16)} differs from what this host writes`);
    }
    // No mapped regions in a saved snapshot: the PEB's region table is empty.
    // (Only the table: the page's last bytes hold the guest's brk/mmap state, syscalls.ts.)
    if (p * PAGE_SIZE === pebAt &&
        got.subarray(PEB_OFF_REGIONS, PEB_OFF_REGIONS + 8 + MAPPED_REGIONS_MAX * MAPPED_REGION_ENTRY_SIZE).some((b) => b !== 0)) {
      throw corrupt('the PEB\'s mapped-region table is not empty');
    }
  }
}

function decodeCpu(bytes: Uint8Array): GuestCpuState {
  const view = (at: number, size: number): DataView => new DataView(bytes.buffer, bytes.byteOffset + at, size);
  const regs = decodeRegs(view(OFF_REGS, kvm_regs.size));
  const sregs = decodeSregs(view(OFF_SREGS, kvm_sregs.size));
  if ((regs.rflags & ~USER_RFLAGS) !== X.RFLAGS_RESERVED_1) {
    throw corrupt(`RFLAGS 0x${regs.rflags.toString(16)} has bits a ring-3 guest cannot set`);
  }
  return guestCpuState(regs, sregs, bytes.slice(OFF_XSAVE, OFF_XSAVE + kvm_xsave.size));
}

/** The parts of a snapshot's special registers a ring-3 guest may change: FS/GS base and CR2. */
export function checkGuestSregs(got: GuestCpuState['sregs'], start: GuestCpuState['sregs']): void {
  const expect = { ...start, fs: { ...start.fs, base: got.fs.base }, gs: { ...start.gs, base: got.gs.base }, cr2: got.cr2 };
  if (!Buffer.from(sregsToBytes(expect)).equals(sregsToBytes(got))) {
    throw new SnapshotIncompatibleError('the snapshot\'s special registers are not the ones this host gives a ring-3 ' +
      'guest (saved on a CPU with other features, or not a state a guest can reach)');
  }
}
