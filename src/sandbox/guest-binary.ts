// Where a guest comes from: a file path or bytes, and the bundled guests' paths.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigInvalidError } from '../errors.js';

/** A guest ELF given by path or by bytes. */
export class GuestBinary {
  private constructor(
    /** Where it came from, for messages. */
    readonly source: string,
    private readonly load: () => Uint8Array,
  ) {}

  /** A guest ELF file on disk (read when the sandbox is created). */
  static filePath(path: string): GuestBinary {
    if (typeof path !== 'string' || path.length === 0) {
      throw new ConfigInvalidError('guest', 'file path must be a non-empty string');
    }
    return new GuestBinary(path, () => {
      try {
        return new Uint8Array(readFileSync(path));
      } catch (e) {
        throw new ConfigInvalidError('guest', `cannot read guest file ${path}: ${(e as Error).message}`, { cause: e });
      }
    });
  }

  /** A guest ELF in memory (copied when the sandbox is created). */
  static buffer(bytes: Uint8Array): GuestBinary {
    if (!(bytes instanceof Uint8Array)) throw new ConfigInvalidError('guest', 'buffer must be a Uint8Array');
    return new GuestBinary('<buffer>', () => bytes.slice());
  }

  /** The ELF bytes. */
  bytes(): Uint8Array {
    return this.load();
  }
}

function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'guests'))) return dir;
    dir = dirname(dir);
  }
  throw new ConfigInvalidError('guest', 'cannot find the hyperlight-ts package root (guests/ folder)');
}

/** Names of the guests shipped prebuilt in `guests/bin/`. */
export const BUNDLED_GUESTS = ['simpleguest', 'dummyguest'] as const;
export type BundledGuestName = typeof BUNDLED_GUESTS[number];

/** The path of a bundled prebuilt guest, e.g. `bundledGuestPath('simpleguest')`. */
export function bundledGuestPath(name: BundledGuestName | string): string {
  if (!(BUNDLED_GUESTS as readonly string[]).includes(name)) {
    throw new ConfigInvalidError('guest', `no bundled guest named ${JSON.stringify(name)}; bundled: ${BUNDLED_GUESTS.join(', ')}`);
  }
  return join(packageRoot(), 'guests', 'bin', `${name}.elf`);
}
