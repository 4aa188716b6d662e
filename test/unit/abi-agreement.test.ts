// Checks that src/sandbox/abi.ts and the C header guests/sdk/include/hyperlight/abi.h agree; it does not build guests.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import * as abi from '../../src/sandbox/abi.js';

const header = fileURLToPath(new URL('../../guests/sdk/include/hyperlight/abi.h', import.meta.url));

/** Every ABI constant both sides must define (the TypeScript name; C adds `HL_`). */
const NAMES = [
  'OP_LOG', 'OP_CALL_FUNCTION', 'OP_ABORT', 'OP_DEBUG_PRINT', 'OP_HALT', 'DOORBELL_STRIDE', 'DEBUG_PRINT_MAX',
  'PEB_OFF_INPUT_SIZE', 'PEB_OFF_INPUT_PTR', 'PEB_OFF_OUTPUT_SIZE', 'PEB_OFF_OUTPUT_PTR',
  'PEB_OFF_INIT_SIZE', 'PEB_OFF_INIT_PTR', 'PEB_OFF_HEAP_SIZE', 'PEB_OFF_HEAP_PTR',
  'PEB_OFF_STACK_SIZE', 'PEB_OFF_STACK_PTR', 'PEB_OFF_DOORBELL_SIZE', 'PEB_OFF_DOORBELL_PTR',
  'PEB_OFF_MAGIC', 'PEB_OFF_ABI_VERSION', 'PEB_OFF_RANDOM_SEED', 'PEB_SIZE', 'PEB_MAGIC', 'ABI_VERSION',
  'ABORT_MAX_BYTES', 'IOBUF_EMPTY_SP',
  'PEB_OFF_REGIONS', 'MAPPED_REGION_ENTRY_SIZE', 'MAPPED_REGIONS_MAX', 'MAPPED_REGION_WRITABLE',
  'OP_PARK', 'OP_WAKE', 'PEB_OFF_MAILBOX_SIZE', 'PEB_OFF_MAILBOX_PTR',
  'MB_OFF_HOST_WORD', 'MB_OFF_SPIN_TICKS', 'MB_OFF_WAITING', 'MB_OFF_GUEST_WORD', 'MB_OFF_GUEST_ARG',
  'MB_OFF_GUEST_STATE', 'MB_CMD_CALL', 'MB_CMD_REPLY', 'MB_CMD_PARK',
  'MB_OFF_HOST_FEATURES', 'MB_OFF_HOST_RECORD', 'MB_OFF_GUEST_RECORD', 'MB_OFF_GUEST_FEATURES', 'MB_OFF_HOST_NAME',
  'MB_OFF_GUEST_NAME', 'MB_FEATURE_INLINE', 'MB_REC_OFF_NAME_LEN', 'MB_REC_OFF_COUNT', 'MB_REC_OFF_TYPE',
  'MB_REC_OFF_PTYPES', 'MB_REC_OFF_VALUES', 'MB_REC_MAX_PARAMS', 'MB_NAME_MAX', 'MB_CMD_CALL_INLINE',
  'MB_CMD_REPLY_INLINE', 'OP_CALL_INLINE', 'OP_HALT_INLINE',
] as const;

/** `#define HL_X value` lines -> name (without HL_) -> value; casts, parentheses and
 * integer suffixes are stripped. Lines whose value is not one integer literal are skipped. */
function parseHeaderDefines(text: string): Map<string, bigint> {
  const out = new Map<string, bigint>();
  const re = /^[ \t]*#[ \t]*define[ \t]+HL_([A-Z0-9_]+)[ \t]+(.+?)[ \t]*(?:\/\/.*|\/\*.*)?$/gm;
  for (const m of text.matchAll(re)) {
    const name = m[1]!;
    let v = m[2]!.trim();
    v = v.replace(/\((?:u?int(?:8|16|32|64)_t|unsigned(?: long)*|long(?: long)?)\)/g, '');
    v = v.replace(/[()\s]/g, '');
    v = v.replace(/(?<=[0-9a-fA-F])[uUlL]+$/, '');
    if (!/^(?:0[xX][0-9a-fA-F]+|[0-9]+)$/.test(v)) continue;
    out.set(name, BigInt(v));
  }
  return out;
}

describe('ABI agreement between abi.ts and abi.h', () => {
  it('parses #define lines the way the header writes them', () => {
    const parsed = parseHeaderDefines([
      '#define HL_PORT_LOG 99',
      '#define HL_PEB_MAGIC 0x3142455053544C48ULL /* "HLTSPEB1" */',
      '#  define HL_SEL_TSS (0x18u) // tss',
      '#define HL_X ((uint64_t)0xFE)',
      '#define HL_MACRO(x) ((x) + 1)',
      '#define NOT_HL 5',
    ].join('\n'));
    expect(parsed.get('PORT_LOG')).toBe(99n);
    expect(parsed.get('PEB_MAGIC')).toBe(0x3142455053544c48n);
    expect(parsed.get('SEL_TSS')).toBe(0x18n);
    expect(parsed.get('X')).toBe(0xfen);
    expect(parsed.has('MACRO(x)')).toBe(false);
    expect(parsed.size).toBe(4);
  });

  it('abi.ts exports every constant with the documented value', () => {
    expect(abi.PEB_MAGIC).toBe(0x3142455053544c48n);
    // "HLTSPEB1" as bytes, little-endian.
    const bytes = new Uint8Array(8);
    new DataView(bytes.buffer).setBigUint64(0, abi.PEB_MAGIC, true);
    expect(new TextDecoder().decode(bytes)).toBe('HLTSPEB1');
    for (const name of NAMES) expect(typeof abi[name], name).toMatch(/number|bigint/);
  });

  it('every HL_ constant in abi.h equals the abi.ts export', () => {
    expect(existsSync(header), `the C ABI header ${header} does not exist`).toBe(true);
    const defines = parseHeaderDefines(readFileSync(header, 'utf8'));
    const missing = NAMES.filter((n) => !defines.has(n));
    expect(missing, 'HL_ names missing from abi.h').toEqual([]);
    const mismatched = NAMES
      .filter((n) => defines.get(n) !== BigInt(abi[n]))
      .map((n) => `HL_${n}: C ${defines.get(n)} != TS ${String(abi[n])}`);
    expect(mismatched).toEqual([]);
  });
});

describe('writePeb', () => {
  const fields: abi.PebFields = {
    inputSize: 0x4000, inputPtr: 0x20000n, outputSize: 0x4000, outputPtr: 0x24000,
    initSize: 0, initPtr: 0, heapSize: 128 * 1024, heapPtr: 0x30000,
    stackSize: 0x8000, stackPtr: 0x51000, doorbellSize: 0x1000, doorbellPtr: 0x5a000,
  };

  it('writes every field little-endian at its offset, plus magic and version', () => {
    const buf = new Uint8Array(16 + abi.PEB_SIZE + 16).fill(0xaa);
    const view = new DataView(buf.buffer);
    abi.writePeb(view, 16, { ...fields, randomSeed: 0x1234_5678_9abc_def0n });
    expect(view.getBigUint64(16 + abi.PEB_OFF_INPUT_SIZE, true)).toBe(0x4000n);
    expect(view.getBigUint64(16 + abi.PEB_OFF_INPUT_PTR, true)).toBe(0x20000n);
    expect(view.getBigUint64(16 + abi.PEB_OFF_HEAP_SIZE, true)).toBe(0x20000n);
    expect(view.getBigUint64(16 + abi.PEB_OFF_DOORBELL_PTR, true)).toBe(0x5a000n);
    expect(new TextDecoder().decode(buf.subarray(16 + abi.PEB_OFF_MAGIC, 16 + abi.PEB_OFF_MAGIC + 8))).toBe('HLTSPEB1');
    expect(view.getBigUint64(16 + abi.PEB_OFF_ABI_VERSION, true)).toBe(2n);
    expect(view.getBigUint64(16 + abi.PEB_OFF_RANDOM_SEED, true)).toBe(0x1234_5678_9abc_def0n);
    // Nothing outside the PEB's bytes is touched.
    expect(buf.subarray(0, 16).every((b) => b === 0xaa)).toBe(true);
    expect(buf.subarray(16 + abi.PEB_SIZE).every((b) => b === 0xaa)).toBe(true);
    const back = abi.readPeb(view, 16);
    expect(back.stackPtr).toBe(0x51000n);
    expect(back.magic).toBe(abi.PEB_MAGIC);
  });

  it('rejects a view too small and values that are not u64', () => {
    expect(() => abi.writePeb(new DataView(new ArrayBuffer(abi.PEB_SIZE - 1)), 0, fields))
      .toThrow(expect.objectContaining({ code: 'ERR_GUEST_MEMORY_BOUNDS' }));
    const view = new DataView(new ArrayBuffer(abi.PEB_SIZE));
    expect(() => abi.writePeb(view, 0, { ...fields, heapSize: -1 }))
      .toThrow(expect.objectContaining({ code: 'ERR_CONFIG_INVALID' }));
    expect(() => abi.writePeb(view, 0, { ...fields, heapPtr: 1n << 64n }))
      .toThrow(expect.objectContaining({ code: 'ERR_CONFIG_INVALID' }));
    expect(() => abi.writePeb(view, 0, { ...fields, stackPtr: 0.5 }))
      .toThrow(expect.objectContaining({ code: 'ERR_CONFIG_INVALID' }));
    // A rejected write leaves the PEB untouched.
    expect(new Uint8Array(view.buffer).every((b) => b === 0)).toBe(true);
  });
});
