// Run the Khronos glTF validator (npm `gltf-validator`) on one .glb / .gltf file and print its
// JSON report on stdout. Usage: node validate.mjs FILE [IGNORED_CODE ...]
// The package is looked up from this script's folder upwards (the repository's node_modules,
// installed by `npm ci`), then from the current directory.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, join } from 'node:path';

function loadValidator() {
  for (const base of [import.meta.url, join(process.cwd(), 'package.json')]) {
    try {
      return createRequire(base)('gltf-validator');
    } catch {
      // try the next place
    }
  }
  process.stderr.write('gltf-validator is not installed: run `npm ci` in the repository root\n');
  process.exit(3);
}

const [file, ...ignoredIssues] = process.argv.slice(2);
if (!file) {
  process.stderr.write('usage: node validate.mjs FILE [IGNORED_CODE ...]\n');
  process.exit(2);
}
const validator = loadValidator();
const bytes = new Uint8Array(readFileSync(file));
const report = await validator.validateBytes(bytes, {
  uri: basename(file),
  maxIssues: 0,
  ignoredIssues,
  externalResourceFunction: (uri) => Promise.reject(new Error(`external resource ${uri} not allowed`)),
});
process.stdout.write(JSON.stringify(report, null, 1) + '\n');
