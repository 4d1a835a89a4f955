// Bundles the entry points of the one package (SPEC §2): the engine library, the CLI, the VS Code
// extension and the engine process it talks to. TF.js and the data sets stay external (resolved from node_modules).
import * as esbuild from 'esbuild';
import { copyFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: true,
  keepNames: true, // module reprs print class names, as PyTorch does
  external: ['@tensorflow/*', 'onnxruntime-node', 'esbuild', 'vscode', './engine.js'],
  logLevel: 'warning',
  // vega's node build awaits an optional `canvas` package at top level, which a CommonJS bundle
  // cannot do; charts render to SVG without a canvas, as its browser build does outside a page
  alias: { 'vega-canvas': fileURLToPath(new URL('../node_modules/vega-canvas/build/vega-canvas.browser.js', import.meta.url)) },
};

await Promise.all([
  esbuild.build({ ...common, entryPoints: ['src/engine/index.ts'], outfile: 'dist/engine.js' }),
  esbuild.build({ ...common, entryPoints: ['src/engine/cli.ts'], outfile: 'dist/cli.js' }),
  esbuild.build({ ...common, entryPoints: ['src/extension/extension.ts'], outfile: 'dist/extension.js' }),
  // the engine process the extension forks (src/engine/host): the engine and its JSON-RPC server
  esbuild.build({ ...common, entryPoints: ['src/engine/host/main.ts'], outfile: 'dist/host.js' }),
  // its long jobs (training) on a worker thread
  esbuild.build({ ...common, entryPoints: ['src/engine/host/worker.ts'], outfile: 'dist/hostWorker.js' }),
  // a data-parallel training worker (src/engine/parallel): a replica of the model on its own thread
  esbuild.build({ ...common, entryPoints: ['src/engine/parallel/worker.ts'], outfile: 'dist/trainWorker.js' }),
  // a notebook's kernel process and the thread its cells run on (src/engine/notebook)
  esbuild.build({ ...common, entryPoints: ['src/engine/notebook/kernelMain.ts'], outfile: 'dist/kernel.js' }),
  esbuild.build({ ...common, entryPoints: ['src/engine/notebook/runtime.ts'], outfile: 'dist/kernelWorker.js' }),
  // the Graph view's webview script (a browser bundle: dagre included, nothing loaded remotely)
  esbuild.build({
    entryPoints: ['src/webview/graph/main.ts'], outfile: 'dist/webview/graph.js', bundle: true, platform: 'browser', format: 'iife',
    target: 'es2022', sourcemap: false, minify: true, logLevel: 'warning',
  }),
]);

// What notebook cells see preloaded, with signatures and docs, for the extension's completions
await import('./api-index.mjs');

// The load-order analyzer's tree-sitter runtime and grammars, beside the bundles (a VSIX built
// with --no-dependencies has no node_modules).
const require = createRequire(import.meta.url);
const wasmDir = join(dirname(require.resolve('@vscode/tree-sitter-wasm/package.json')), 'wasm');
mkdirSync('dist/tree-sitter-wasm', { recursive: true });
for (const f of ['tree-sitter.wasm', 'tree-sitter-python.wasm', 'tree-sitter-typescript.wasm', 'tree-sitter-tsx.wasm', 'tree-sitter-javascript.wasm']) {
  copyFileSync(join(wasmDir, f), join('dist/tree-sitter-wasm', f));
}
