// Where a guest comes from: a file path or bytes, and the bundled guests' paths.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigInvalidError } from '../errors.js';
import { packageRoot } from '../package-root.js';
import { type ElfImage, parseElf } from '../elf/index.js';
import { type GuestFunctionSignature, findGuestFunction, readGuestFunctions } from './guest-functions.js';
import { IdleMachinePool, type InitTemplate, type Machine } from './machine.js';

/** What a finished guest init left behind, reusable by later sandboxes (see evolve()). */
export interface GuestInitTemplate {
  readonly dispatch: bigint;
  readonly init: InitTemplate;
}

/**
 * A guest ELF given by path or by bytes. Keep and reuse the object: it reads and
 * validates the ELF once, and remembers the result of the guest's init per memory layout,
 * so sandboxes created from it later start without running guest code (see
 * `UninitializedSandbox.evolve`); with `vmPool` it also keeps VMs of closed sandboxes to
 * reset and reuse.
 */
export class GuestBinary {
  #bytes: Uint8Array | undefined;
  #image: ElfImage | undefined;
  #functions: readonly GuestFunctionSignature[] | undefined;
  #hash: string | undefined;
  readonly #declaredByName = new Map<string, GuestFunctionSignature | null>();
  readonly #templates = new Map<string, GuestInitTemplate>();
  readonly #idle: IdleMachinePool;

  private constructor(
    /** Where it came from, for messages. */
    readonly source: string,
    private readonly load: () => Uint8Array,
    options: GuestBinaryOptions | undefined,
  ) {
    const pool = options?.vmPool ?? 0;
    if (!Number.isSafeInteger(pool) || pool < 0 || pool > 4096) {
      throw new ConfigInvalidError('vmPool', `must be an integer from 0 to 4096, got ${String(pool)}`);
    }
    this.#idle = new IdleMachinePool(pool);
  }

  /** A guest ELF file on disk, read when first used (later changes to the file are not seen). */
  static filePath(path: string, options?: GuestBinaryOptions): GuestBinary {
    if (typeof path !== 'string' || path.length === 0) {
      throw new ConfigInvalidError('guest', 'file path must be a non-empty string');
    }
    return new GuestBinary(path, () => {
      try {
        return new Uint8Array(readFileSync(path));
      } catch (e) {
        throw new ConfigInvalidError('guest', `cannot read guest file ${path}: ${(e as Error).message}`, { cause: e });
      }
    }, options);
  }

  /** A guest ELF in memory (copied now, so later changes to `bytes` are not seen). */
  static buffer(bytes: Uint8Array, options?: GuestBinaryOptions): GuestBinary {
    if (!(bytes instanceof Uint8Array)) throw new ConfigInvalidError('guest', 'buffer must be a Uint8Array');
    const copy = bytes.slice();
    return new GuestBinary('<buffer>', () => copy, options);
  }

  /** The ELF bytes (do not modify them). */
  bytes(): Uint8Array {
    this.#bytes ??= this.load();
    return this.#bytes;
  }

  /** The validated image, parsed on first use. @throws ElfInvalidError */
  image(): ElfImage {
    this.#image ??= parseElf(this.bytes());
    return this.#image;
  }

  /**
   * The guest functions the ELF declares (names, parameter and return types), sorted by
   * name, read from its "Hyperlight" notes without running it. The SDK's
   * HYPERLIGHT_REGISTER_FUNCTION and HYPERLIGHT_REGISTER_TYPED write them; a guest built
   * otherwise declares none (empty). @throws ElfInvalidError for a malformed image or note.
   */
  functions(): readonly GuestFunctionSignature[] {
    if (!this.#functions) {
      this.image();
      this.#functions = Object.freeze(readGuestFunctions(this.bytes()));
    }
    return this.#functions;
  }

  /** SHA-256 of the ELF bytes (hex), computed once: what snapshots record as the binary's identity. */
  contentHash(): string {
    this.#hash ??= createHash('sha256').update(this.bytes()).digest('hex');
    return this.#hash;
  }

  /**
   * @internal the declaration of one guest function (what call() needs), read without
   * building the whole list; cached per name.
   */
  declaredFunction(name: string): GuestFunctionSignature | undefined {
    if (this.#functions) return this.#functions.find((f) => f.name === name);
    let f = this.#declaredByName.get(name);
    if (f === undefined) {
      f = findGuestFunction(this.bytes(), name) ?? null;
      this.#declaredByName.set(name, f);
    }
    return f ?? undefined;
  }

  /** @internal the init template recorded for `key` (a layout and log level). */
  template(key: string): GuestInitTemplate | undefined {
    return this.#templates.get(key);
  }

  /** @internal records an init template for `key`. */
  setTemplate(key: string, template: GuestInitTemplate): void {
    this.#templates.set(key, template);
  }

  /** @internal an idle VM kept for memory layout `key`, if any. */
  takeIdleVm(key: string): Machine | undefined {
    return this.#idle.take(key);
  }

  /** @internal keeps a VM for reuse; false when the pool is full (the caller closes it). */
  offerIdleVm(key: string, machine: Machine): boolean {
    return this.#idle.offer(key, machine);
  }

  /** Number of idle VMs kept (see `vmPool`). */
  get idleVms(): number {
    return this.#idle.size;
  }

  /** Closes every idle VM kept by `vmPool`. The binary stays usable. */
  releaseIdleVms(): void {
    this.#idle.clear();
  }
}

export interface GuestBinaryOptions {
  /**
   * How many idle VMs (per memory layout) to keep when sandboxes of this binary close
   * cleanly, to reset and reuse for the next evolve() instead of creating a VM (default 0:
   * close() releases everything). A reused VM gets all memory zeroed and reloaded and all
   * registers reset; sandboxes closed while poisoned are never reused. Kept VMs hold two
   * fds and their memory until `releaseIdleVms()`.
   */
  vmPool?: number;
}

/** Names of the guests shipped prebuilt in `guests/bin/`. */
export const BUNDLED_GUESTS = ['simpleguest', 'dummyguest', 'hostileguest', 'benchguest', 'debugguest'] as const;
export type BundledGuestName = typeof BUNDLED_GUESTS[number];

/** The path of a bundled prebuilt guest, e.g. `bundledGuestPath('simpleguest')`. */
export function bundledGuestPath(name: BundledGuestName): string {
  if (!(BUNDLED_GUESTS as readonly string[]).includes(name)) {
    throw new ConfigInvalidError('guest', `no bundled guest named ${JSON.stringify(name)}; bundled: ${BUNDLED_GUESTS.join(', ')}`);
  }
  return join(packageRoot(), 'guests', 'bin', `${name}.elf`);
}
