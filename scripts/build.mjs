// Bundles the three entry points of the one package (SPEC §2): the engine library, the CLI and
// the VS Code extension. TF.js and the data sets stay external (resolved from node_modules).
import * as esbuild from 'esbuild';

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: true,
  keepNames: true, // module reprs print class names, as PyTorch does
  external: ['@tensorflow/*', 'onnxruntime-node', 'esbuild', 'vscode', './engine.js'],
  logLevel: 'warning',
};

await Promise.all([
  esbuild.build({ ...common, entryPoints: ['src/engine/index.ts'], outfile: 'dist/engine.js' }),
  esbuild.build({ ...common, entryPoints: ['src/engine/cli.ts'], outfile: 'dist/cli.js' }),
  esbuild.build({ ...common, entryPoints: ['src/extension/extension.ts'], outfile: 'dist/extension.js' }),
]);
