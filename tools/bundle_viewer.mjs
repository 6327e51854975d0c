// Copy three.js (npm `three`, installed by `npm ci`) into the package for the export viewer:
// the module build, GLTFLoader, OrbitControls and RoomEnvironment plus every module they import,
// with relative imports rewritten to bare `three-pkg/<path>` specifiers, so that the viewer page
// can load them all from one import map of data: URLs (no network, no CDN).
// Writes assetgan/inverse_graphics/export/viewer_js/{*.js, modules.json, LICENSE}.
// Usage (repository root): node tools/bundle_viewer.mjs
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, posix, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const three = join(root, 'node_modules', 'three');
const out = join(root, 'assetgan', 'inverse_graphics', 'export', 'viewer_js');
const entries = [
  'build/three.module.js',
  'examples/jsm/loaders/GLTFLoader.js',
  'examples/jsm/controls/OrbitControls.js',
  'examples/jsm/environments/RoomEnvironment.js',
];
const version = JSON.parse(readFileSync(join(three, 'package.json'), 'utf8')).version;
// Static imports and re-exports at the start of a line (three's style; JSDoc examples inside
// comments start with ` * ` and are left alone): `import {...} from '...'`, `import '...'`.
const importPattern = /^((?:import|export)\b[^;'"]*?(?:from\s*)?)(['"])([^'"]+)\2/gm;

const modules = {}; // specifier -> file name in viewer_js/
const queue = [...entries];
const seen = new Set();
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
while (queue.length) {
  const path = queue.shift();
  if (seen.has(path)) continue;
  seen.add(path);
  let source = readFileSync(join(three, path), 'utf8');
  source = source.replace(importPattern, (match, keyword, quote, spec) => {
    if (spec === 'three') return match;
    if (!spec.startsWith('.')) throw new Error(`${path}: unexpected import ${spec}`);
    const target = posix.normalize(posix.join(posix.dirname(path), spec));
    queue.push(target);
    return `${keyword}${quote}three-pkg/${target}${quote}`;
  });
  if (/\bimport\s*\(/.test(source.replace(/\/\/.*$|\/\*[\s\S]*?\*\//gm, ''))) {
    throw new Error(`${path}: dynamic import() cannot be served from the import map`);
  }
  const file = path.replaceAll('/', '__');
  writeFileSync(join(out, file), source);
  modules[path === 'build/three.module.js' ? 'three' : `three-pkg/${path}`] = file;
}
copyFileSync(join(three, 'LICENSE'), join(out, 'LICENSE'));
writeFileSync(
  join(out, 'modules.json'),
  JSON.stringify({ three_version: version, modules }, null, 1) + '\n',
);
console.log(`copied ${Object.keys(modules).length} three.js ${version} modules to ${relative(root, out)}`);
