// Finds the installed hyperlight-ts package's root directory (guests/, the SDK) from this module's own file; no other lookups.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigInvalidError } from './errors.js';

/**
 * The file this module was loaded from, read from V8's structured stack trace rather than
 * `import.meta.url` (ES modules only) or `__dirname` (CommonJS only), so one source serves
 * the ESM build and the CommonJS one. ESM frames name a file: URL, CommonJS ones a path.
 */
function thisModuleFile(): string {
  const saved = Error.prepareStackTrace;
  let file: string | undefined;
  try {
    Error.prepareStackTrace = (_e, frames) => frames;
    const frames = new Error().stack as unknown as NodeJS.CallSite[];
    file = frames[0]?.getFileName() ?? undefined;
  } finally {
    Error.prepareStackTrace = saved;
  }
  if (!file) throw new ConfigInvalidError('guest', 'cannot tell where the hyperlight-ts package is installed');
  return file.startsWith('file:') ? fileURLToPath(file) : file;
}

function isOurPackageJson(file: string): boolean {
  try {
    const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
    return typeof parsed === 'object' && parsed !== null && (parsed as { name?: unknown }).name === 'hyperlight-ts';
  } catch {
    return false; // not a package.json we can read: keep walking up
  }
}

/**
 * The directory holding the package.json named "hyperlight-ts" above this module (from
 * src/, dist/src/ or dist/cjs/). Cached after the first call.
 * @throws ConfigInvalidError when there is none (the package was copied without it).
 */
export function packageRoot(): string {
  if (cached !== undefined) return cached;
  let dir = dirname(thisModuleFile());
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && isOurPackageJson(join(dir, 'package.json'))) return (cached = dir);
    const parent = dirname(dir);
    if (parent === dir) throw new ConfigInvalidError('guest', 'cannot find the hyperlight-ts package root (its package.json)');
    dir = parent;
  }
}
let cached: string | undefined;

/**
 * The root directory of the compiled library this code belongs to: `dist/src` (ESM) or
 * `dist/cjs` (CommonJS); for the TypeScript sources themselves (tests) `dist/src`, which
 * `npm run build` fills. For files that must be loaded by path, such as worker scripts.
 */
export function libraryDir(): string {
  const here = dirname(thisModuleFile());
  return here.endsWith('.ts') || !/[/\\]dist[/\\](src|cjs)$/.test(here) ? join(packageRoot(), 'dist', 'src') : here;
}
