// Marks dist/cjs/ as CommonJS (its own package.json) after `tsc -p tsconfig.cjs.json`; builds nothing itself.
import { writeFileSync } from 'node:fs';

writeFileSync(new URL('../dist/cjs/package.json', import.meta.url), '{ "type": "commonjs" }\n');
