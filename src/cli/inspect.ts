// `hyperlight-ts inspect`: a guest's ELF summary, memory map and page tables, computed exactly as the sandbox would, without KVM.
import {
  type ElfImage, type GuestFunctionSignature, GuestBinary, PageTables, type SandboxConfig, UninitializedSandbox, formatSignature,
} from '../index.js';
import { BUNDLED_LIST, UsageError, out, parseCommandArgs, parseSize, resolveGuest } from './usage.js';

export const INSPECT_USAGE = `Usage: hyperlight-ts inspect <guest> [--heap SIZE] [--stack SIZE]

Prints what a sandbox on <guest> (an ELF file, or a bundled guest: ${BUNDLED_LIST}) would
get: the ELF summary (type, entry, segments with R/W/X, relocations), the guest functions
its notes declare, the guest memory map, and a walk of the page tables built for it
(ranges with their rights). Needs no /dev/kvm.

Options:
  --heap SIZE    guest heap in bytes (65536, 0x10000, 64k, 1m)
  --stack SIZE   guest stack in bytes
  -h, --help     this text`;

const hex = (n: number | bigint): string => `0x${n.toString(16)}`;

function human(n: number): string {
  if (n >= 1 << 20 && n % (1 << 20) === 0) return `${n / (1 << 20)} MiB`;
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024} KiB`;
  return `${n} B`;
}

function columns(head: readonly string[], rows: readonly string[][]): string[] {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [head, ...rows].map((r) => '  ' + r.map((c, i) => c.padEnd(w[i]!)).join('  ').trimEnd());
}

/** The ELF part of the report. */
export function describeElf(image: ElfImage, fileSize: number): string[] {
  const kind = image.type === 'dyn' ? 'ET_DYN (static PIE, loads at any page-aligned base)'
    : `ET_EXEC (fixed base ${hex(image.fixedBase ?? 0)})`;
  const rows = image.segments.map((s, i) => [
    String(i), hex(s.vaddr), hex(s.offsetInImage), human(s.fileSize), human(s.memSize),
    `${s.readable ? 'R' : '-'}${s.writable ? 'W' : '-'}${s.executable ? 'X' : '-'}`,
  ]);
  return [
    `ELF (${human(fileSize)})`,
    `  type         ${kind}`,
    `  entry        image + ${hex(image.entryOffset)} (link address ${hex(image.linkBase + image.entryOffset)})`,
    `  span         ${hex(image.span)} (${human(image.span)}) from link base ${hex(image.linkBase)}`,
    `  relocations  ${image.relocations.length}`,
    `  segments     ${image.segments.length} PT_LOAD:`,
    ...columns(['#', 'vaddr', 'image offset', 'file size', 'mem size', 'flags'], rows).map((l) => `  ${l}`),
  ];
}

function spanNames(span: PageTables.MappedSpan, ranges: readonly PageTables.MappedRange[]): string {
  const names = ranges.filter((r) => r.gpa < span.gpa + span.size && span.gpa < r.gpa + r.size).map((r) => r.name ?? '?');
  return names.join(', ');
}

/** The page-table part: tables built into a plain Uint8Array exactly as `createMachine` does, then walked. */
export function describePageTables(layout: PageTables.MemoryLayout, image: ElfImage): string[] {
  const ranges = PageTables.mappedRangesFor(layout, image.segments);
  const memory = new Uint8Array(layout.pageTables.gpa + layout.pageTables.size);
  const tables = PageTables.buildPageTables(ranges, layout.pageTables, memory.subarray(layout.pageTables.gpa));
  const spans = PageTables.walkRanges(memory, tables.cr3);
  const rows = spans.map((s) => [
    hex(s.gva), hex(s.gva + s.size), human(s.size), `r${s.writable ? 'w' : '-'}${s.executable ? 'x' : '-'}`,
    s.user ? 'user' : 'supervisor', s.gva === s.gpa ? 'identity' : `-> ${hex(s.gpa)}`, spanNames(s, ranges),
  ]);
  const mapped = spans.reduce((a, s) => a + s.size, 0);
  return [
    `Page tables: CR3 ${hex(tables.cr3)}, ${tables.used / 4096} tables (${human(tables.used)} of a ${human(layout.pageTables.size)} area), ` +
      `${spans.length} mapped ranges, ${human(mapped)} mapped; everything else is not present`,
    ...columns(['start', 'end (excl.)', 'size', 'rights', 'ring', 'maps to', 'regions'], rows),
  ];
}

/** The guest functions part: what the ELF's notes declare. */
export function describeFunctions(functions: readonly GuestFunctionSignature[]): string[] {
  if (functions.length === 0) {
    return ['Guest functions: none declared (the ELF has no Hyperlight function notes; the SDK\'s',
      '  HYPERLIGHT_REGISTER_FUNCTION and HYPERLIGHT_REGISTER_TYPED write them)'];
  }
  return [`Guest functions (${functions.length}, declared in the ELF's notes):`, ...functions.map((f) => `  ${formatSignature(f)}`)];
}

/** The full report for `inspect`. */
export function inspectGuest(path: string, config: SandboxConfig = {}): string {
  const binary = GuestBinary.filePath(path);
  const bytes = binary.bytes();
  // The layout a sandbox would get: create() validates and plans, without KVM.
  const u = UninitializedSandbox.create(binary, config);
  const image = u.image;
  const layout = u.layout;
  return [
    `guest ${path}`,
    '',
    ...describeElf(image, bytes.length),
    '',
    ...describeFunctions(binary.functions()),
    '',
    'Guest memory map (guest-physical = guest-virtual):',
    PageTables.formatLayout(layout),
    `  the image is loaded at ${hex(layout.image.gpa)}; the vCPU starts at RIP ${hex(layout.image.gpa + image.entryOffset)}`,
    '',
    ...describePageTables(layout, image),
    '',
  ].join('\n');
}

export function inspectCommand(argv: string[]): number {
  const { values, positionals } = parseCommandArgs(argv, {
    heap: { type: 'string' },
    stack: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  }, INSPECT_USAGE);
  if (values.help) {
    out(`${INSPECT_USAGE}\n`);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError('inspect takes exactly one guest', INSPECT_USAGE);
  const config: SandboxConfig = {};
  if (values.heap !== undefined) config.heapSize = parseSize('heap', values.heap, INSPECT_USAGE);
  if (values.stack !== undefined) config.stackSize = parseSize('stack', values.stack, INSPECT_USAGE);
  out(inspectGuest(resolveGuest(positionals[0]!).path, config));
  return 0;
}
