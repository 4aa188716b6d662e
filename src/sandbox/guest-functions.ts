// The guest functions a guest ELF declares in its "Hyperlight" notes (written by the SDK's registration macros), read without running the guest; no VM here.
import { ElfInvalidError } from '../errors.js';
import { type ElfNote, type ElfNoteSpan, forEachElfNote, readElfNotes } from '../elf/notes.js';
import { GuestError, ParameterTypeMismatchError, ReturnTypeMismatchError } from './errors.js';
import { type CallArgument, type ParameterTypeName, type ReturnTypeName, type TypedValue, coerce } from './values.js';

/** The note owner and types of guests/sdk/include/hyperlight_guest.h (HL_NOTE_*). */
export const HL_NOTE_OWNER = 'Hyperlight';
export const HL_NOTE_SIGNATURE = 1;
export const HL_NOTE_NAME = 2;
/** Most parameters a guest function takes (HL_MAX_GUEST_PARAMS): the size of a signature's type array. */
const NOTE_TYPE_SLOTS = 11;
const SIGNATURE_FIXED_BYTES = 16;

/** One guest function as its ELF declares it. */
export interface GuestFunctionSignature {
  readonly name: string;
  readonly params: readonly ParameterTypeName[];
  readonly returns: ReturnTypeName;
}

/** hl_ParameterType numbering (Hyperlight's ParameterType). */
const PARAMETER_TYPES: readonly ParameterTypeName[] =
  ['Int', 'UInt', 'Long', 'ULong', 'Float', 'Double', 'String', 'Bool', 'VecBytes'];
/** hl_ReturnType numbering (Hyperlight's ReturnType: Void is 8, VecBytes 9). */
const RETURN_TYPES: readonly ReturnTypeName[] =
  ['Int', 'UInt', 'Long', 'ULong', 'Float', 'Double', 'String', 'Bool', 'Void', 'VecBytes'];

const utf8 = new TextDecoder('utf-8', { fatal: true });
const utf8Encoder = new TextEncoder();

function bad(message: string): never {
  throw new ElfInvalidError(`guest function note: ${message}`);
}

/**
 * UTF-8 text from bytes[start, end); ASCII (every C identifier, nearly every name) read
 * byte by byte, without a TextDecoder or a view.
 */
function decode(bytes: Uint8Array, start: number, end: number, what: string): string {
  let ascii = '';
  for (let i = start; i < end; i++) {
    const c = bytes[i]!;
    if (c >= 0x80) {
      try {
        return utf8.decode(bytes.subarray(start, end));
      } catch {
        bad(`${what} is not UTF-8`);
      }
    }
    ascii += String.fromCharCode(c);
  }
  return ascii;
}

/** `count` NUL-terminated UTF-8 strings packed in bytes[start, end). */
function strings(bytes: Uint8Array, start: number, end: number, count: number, what: string): string[] {
  const out: string[] = [];
  let at = start;
  for (let i = 0; i < count; i++) {
    let nul = at;
    while (nul < end && bytes[nul] !== 0) nul++;
    if (nul >= end) bad(`${what} is not NUL-terminated`);
    out.push(decode(bytes, at, nul, what));
    at = nul + 1;
  }
  return out;
}

function signatureOf(bytes: Uint8Array, note: ElfNote): { ident: string; params: ParameterTypeName[]; returns: ReturnTypeName } {
  const d = note.descOffset;
  if (note.descSize < SIGNATURE_FIXED_BYTES + 1) bad(`a signature record of ${note.descSize} bytes is too short`);
  if (bytes[d] !== 1) bad(`signature record version ${bytes[d]} is not 1`);
  const returns = RETURN_TYPES[bytes[d + 1]!];
  if (returns === undefined) bad(`return type ${bytes[d + 1]} is unknown`);
  const count = bytes[d + 2]!;
  if (count > NOTE_TYPE_SLOTS) bad(`${count} parameters, more than ${NOTE_TYPE_SLOTS}`);
  const params: ParameterTypeName[] = [];
  for (let i = 0; i < count; i++) {
    const t = bytes[d + 3 + i]!;
    params.push(PARAMETER_TYPES[t] ?? bad(`parameter type ${t} is unknown`));
  }
  const [ident] = strings(bytes, d + SIGNATURE_FIXED_BYTES, d + note.descSize, 1, 'a signature record\'s identifier');
  return { ident: ident!, params, returns };
}

/**
 * The functions declared by the guest's notes, sorted by name (the compiler emits the
 * records of one function in no guaranteed order). A name record whose wrapper left no
 * signature record is skipped; the first record of a name wins.
 * @throws ElfInvalidError for a malformed ELF note or Hyperlight record.
 */
export function readGuestFunctions(bytes: Uint8Array): GuestFunctionSignature[] {
  const notes = readElfNotes(bytes).filter((n) => n.owner === HL_NOTE_OWNER);
  const signatures = new Map<string, { params: ParameterTypeName[]; returns: ReturnTypeName }>();
  for (const n of notes) {
    if (n.type !== HL_NOTE_SIGNATURE) continue;
    const { ident, ...sig } = signatureOf(bytes, n);
    if (!signatures.has(ident)) signatures.set(ident, sig);
  }
  const out: GuestFunctionSignature[] = [];
  const seen = new Set<string>();
  for (const n of notes) {
    if (n.type !== HL_NOTE_NAME) continue;
    const [ident, name] = strings(bytes, n.descOffset, n.descOffset + n.descSize, 2, 'a name record');
    const sig = signatures.get(ident!);
    if (!sig || seen.has(name!)) continue;
    seen.add(name!);
    out.push({ name: name!, params: sig.params, returns: sig.returns });
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Whether bytes[at, at + want.length) equals `want`. */
function sameBytes(bytes: Uint8Array, at: number, want: Uint8Array): boolean {
  for (let i = 0; i < want.length; i++) if (bytes[at + i] !== want[i]) return false;
  return true;
}

/** Whether bytes[a, a + len) equals bytes[b, b + len). */
function sameRange(bytes: Uint8Array, a: number, b: number, len: number): boolean {
  for (let i = 0; i < len; i++) if (bytes[a + i] !== bytes[b + i]) return false;
  return true;
}

const OWNER_BYTES = utf8Encoder.encode(HL_NOTE_OWNER);
const isHyperlight = (bytes: Uint8Array, n: ElfNoteSpan): boolean =>
  n.ownerSize === OWNER_BYTES.length && sameBytes(bytes, n.ownerOffset, OWNER_BYTES);

/** The end of the NUL-terminated string at `at` (the NUL's offset), within `end`. */
function nulAt(bytes: Uint8Array, at: number, end: number, what: string): number {
  let i = at;
  while (i < end && bytes[i] !== 0) i++;
  if (i >= end) bad(`${what} is not NUL-terminated`);
  return i;
}

/**
 * The declaration of guest function `name`, found without building the whole list (what
 * a call() on a new binary needs): the same answer as readGuestFunctions for that name.
 * Only the records it reads are validated.
 * @throws ElfInvalidError for a malformed note or record on the way.
 */
export function findGuestFunction(bytes: Uint8Array, name: string): GuestFunctionSignature | undefined {
  const want = utf8Encoder.encode(name);
  // The identifiers (offset, length) of the name records for `name`, in file order.
  const idents: [number, number][] = [];
  forEachElfNote(bytes, (n) => {
    if (n.type !== HL_NOTE_NAME || !isHyperlight(bytes, n)) return;
    const end = n.descOffset + n.descSize;
    const identEnd = nulAt(bytes, n.descOffset, end, 'a name record');
    const nameEnd = nulAt(bytes, identEnd + 1, end, 'a name record');
    if (nameEnd - identEnd - 1 === want.length && sameBytes(bytes, identEnd + 1, want)) {
      idents.push([n.descOffset, identEnd - n.descOffset]);
    }
  });
  if (idents.length === 0) return undefined;
  // The first signature record of each identifier; the earliest name record with one wins.
  const found: ({ params: ParameterTypeName[]; returns: ReturnTypeName } | undefined)[] = idents.map(() => undefined);
  forEachElfNote(bytes, (n) => {
    if (n.type !== HL_NOTE_SIGNATURE || !isHyperlight(bytes, n) || n.descSize < SIGNATURE_FIXED_BYTES + 1) return;
    const identAt = n.descOffset + SIGNATURE_FIXED_BYTES;
    idents.forEach(([at, len], i) => {
      if (found[i] || n.descSize - SIGNATURE_FIXED_BYTES <= len || bytes[identAt + len] !== 0) return;
      if (sameRange(bytes, identAt, at, len)) {
        const { params, returns } = signatureOf(bytes, { owner: HL_NOTE_OWNER, ...n });
        found[i] = { params, returns };
      }
    });
  });
  const sig = found.find((f) => f !== undefined);
  return sig ? { name, params: sig.params, returns: sig.returns } : undefined;
}

/** `Name(Int, String) -> Long`, for messages and listings. */
export function formatSignature(f: GuestFunctionSignature): string {
  return `${f.name}(${f.params.join(', ')}) -> ${f.returns}`;
}

/**
 * The arguments of a call() to a declared function, converted to its declared parameter
 * types (a number to Long, ULong, UInt, Float; see `coerce`).
 * @throws ReturnTypeMismatchError when `returnType` is not the declared one;
 *   ParameterTypeMismatchError for a wrong count or a value that does not fit.
 */
export function declaredArguments(f: GuestFunctionSignature, returnType: ReturnTypeName, args: readonly unknown[]): TypedValue[] {
  if (returnType !== f.returns) {
    throw new ReturnTypeMismatchError(`guest function ${formatSignature(f)} (declared in its ELF) returns ${f.returns}, ` +
      `the caller expected ${returnType}`);
  }
  if (args.length !== f.params.length) {
    throw new ParameterTypeMismatchError(`guest function ${formatSignature(f)} takes ${f.params.length} ` +
      `argument${f.params.length === 1 ? '' : 's'}, got ${args.length}`);
  }
  return args.map((a, i) => {
    try {
      return coerce(f.params[i]!, a);
    } catch (e) {
      throw new ParameterTypeMismatchError(`argument ${i} of ${formatSignature(f)}: ${(e as Error).message}`);
    }
  });
}

/**
 * call()'s arguments for guest function `name`: converted to its declared types when
 * `declared` has it (see declaredArguments), otherwise `args` unchanged.
 */
export function argumentsFor(declared: ReadonlyMap<string, GuestFunctionSignature>, name: string,
  returnType: ReturnTypeName, args: readonly CallArgument[]): readonly CallArgument[] {
  const f = declared.get(name);
  return f ? declaredArguments(f, returnType, args) : args;
}

/** Hyperlight's ErrorCode GuestFunctionParameterTypeMismatch. */
const GUEST_PARAMETER_TYPE_MISMATCH = 14;

/**
 * For a call() to a function the guest does not declare: the guest's "wrong parameter
 * type" GuestError with a hint saying how call() typed the plain arguments and what to do;
 * any other error unchanged.
 */
export function withUndeclaredHint(e: unknown, name: string, params: readonly TypedValue[]): unknown {
  if (!(e instanceof GuestError) || e.guestCode !== GUEST_PARAMETER_TYPE_MISMATCH) return e;
  return new GuestError(e.guestCode, `${e.guestMessage} (call() typed its plain arguments as ` +
    `(${params.map((p) => p.type).join(', ')}); the guest's ELF declares no signature for ${name}: pass ` +
    'ParameterValue.Long(3n) etc. for the exact types, or register the function with the SDK\'s ' +
    'HYPERLIGHT_REGISTER_FUNCTION or HYPERLIGHT_REGISTER_TYPED so that call() converts them)', { cause: e });
}
