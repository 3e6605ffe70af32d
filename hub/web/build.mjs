// Builds the callbox browser app into dist/ (checked into git; callbox-hub embeds it).
//   dist/app.js       src/app.js bundled with livekit-client (esbuild, minified, es2020)
//   dist/index.html   dist/app.css   dist/favicon.svg   copied as they are
// Deterministic: the same sources and lockfile give byte-identical output.
import { build } from 'esbuild';
import { copyFile, mkdir, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const src = path.join(here, 'src');
const dist = path.join(here, 'dist');
const COPIED = ['index.html', 'app.css', 'favicon.svg'];
const EXPECTED = ['app.css', 'app.js', 'favicon.svg', 'index.html'];

await rm(dist, { recursive: true, force: true });
await mkdir(dist);

await build({
  absWorkingDir: here,
  entryPoints: [path.join(src, 'app.js')],
  outfile: path.join(dist, 'app.js'),
  bundle: true,
  format: 'iife',
  platform: 'browser',
  target: 'es2020',
  minify: true,
  sourcemap: false,
  legalComments: 'eof',
  define: { 'process.env.NODE_ENV': '"production"' },
  logLevel: 'warning',
});

for (const name of COPIED) await copyFile(path.join(src, name), path.join(dist, name));

const files = (await readdir(dist)).sort();
if (JSON.stringify(files) !== JSON.stringify(EXPECTED)) {
  console.error(`dist/ holds ${files.join(', ')}; expected exactly ${EXPECTED.join(', ')}`);
  process.exit(1);
}
for (const name of files) {
  const { size } = await stat(path.join(dist, name));
  console.log(`dist/${name.padEnd(12)} ${(size / 1024).toFixed(1).padStart(7)} KB`);
}
