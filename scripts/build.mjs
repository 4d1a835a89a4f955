// Bundles the entry points of the one package (SPEC §2): the engine library, the CLI, the VS Code
// extension and the engine process it talks to. TF.js and the data sets stay external (resolved from node_modules).
import * as esbuild from 'esbuild';
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * The package's declarations (package.json `types`, issue 20): the engine's public API
 * (src/engine/index.ts) as .d.ts files in `outDir` (dist/types), what a model file's
 * `import { nn } from 'linger-studio'` type-checks against. tsc cannot declare a mixin's
 * anonymous class that has private or protected members (TS4094; src/engine/linger/ops use
 * such mixins), so the sources are read with those modifiers dropped: in the declarations those
 * members are public; the bundles (esbuild, from the real sources) are unaffected.
 * Returns the emit's diagnostics as strings (none expected).
 */
export async function emitDeclarations(outDir) {
  const { default: ts } = await import('typescript');
  const options = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.CommonJS,
    moduleResolution: ts.ModuleResolutionKind.Node10,
    strict: true,
    esModuleInterop: true,
    skipLibCheck: true,
    useDefineForClassFields: true,
    resolveJsonModule: true,
    types: ['node'],
    declaration: true,
    emitDeclarationOnly: true,
    outDir,
    rootDir: join(root, 'src', 'engine'),
  };
  const host = ts.createCompilerHost(options);
  const read = host.readFile.bind(host);
  const modifier = /(^|[\s(,;{])(private|protected)\s+(?=((readonly|static|async|override|abstract|get|set)\s+)*[\w$[*])/gm;
  const engineDir = join(root, 'src', 'engine').replace(/\\/g, '/');
  host.readFile = (f) => {
    const text = read(f);
    return text !== undefined && f.replace(/\\/g, '/').startsWith(engineDir) && !f.endsWith('.d.ts') ? text.replace(modifier, '$1') : text;
  };
  rmSync(outDir, { recursive: true, force: true });
  const program = ts.createProgram([join(root, 'src', 'engine', 'index.ts')], options, host);
  const r = program.emit();
  // the package's `exports` name dist/engine.js; TypeScript resolving through it looks beside it
  if (resolve(outDir) === join(root, 'dist', 'types')) writeFileSync(join(root, 'dist', 'engine.d.ts'), "export * from './types/index';\n");
  return r.diagnostics.map((d) => `${d.file?.fileName ?? ''}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await build();

async function build() {
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

  const bundles = Promise.all([
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
      entryPoints: ['src/webview/graph/main.ts'],
      outfile: 'dist/webview/graph.js',
      bundle: true,
      platform: 'browser',
      format: 'iife',
      target: 'es2022',
      sourcemap: false,
      minify: true,
      logLevel: 'warning',
    }),
  ]);
  // while esbuild bundles (its own process): the declarations
  const dtsErrors = await emitDeclarations(join(root, 'dist', 'types'));
  if (dtsErrors.length) throw new Error(`build: declarations: ${dtsErrors.join('\n')}`);
  await bundles;

  // What notebook cells see preloaded, with signatures and docs, for the extension's completions
  await import('./api-index.mjs');

  // The load-order analyzer's tree-sitter runtime and grammars, beside the bundles (a VSIX built
  // with --no-dependencies has no node_modules).
  const require = createRequire(import.meta.url);
  const wasmDir = join(dirname(require.resolve('@vscode/tree-sitter-wasm/package.json')), 'wasm');
  mkdirSync('dist/tree-sitter-wasm', { recursive: true });
  for (const f of [
    'tree-sitter.wasm',
    'tree-sitter-python.wasm',
    'tree-sitter-typescript.wasm',
    'tree-sitter-tsx.wasm',
    'tree-sitter-javascript.wasm',
  ]) {
    copyFileSync(join(wasmDir, f), join('dist/tree-sitter-wasm', f));
  }

  // the bridge a PyTorch model file is built through (services/pythonModel.ts), beside the bundles
  mkdirSync('dist/python', { recursive: true });
  copyFileSync('src/engine/python/trace_model.py', 'dist/python/trace_model.py');
}
