// The packaged .vsix, installed into an empty extensions folder (no extensionDevelopmentPath shadows
// it): it activates from its install folder, traces a TypeScript model file, runs the two-stage demo
// on the Fashion-MNIST it carries, and exports + verifies a qdq checkpoint in onnxruntime — so it
// holds everything it needs at run time.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { suite, test } from 'mocha';
import * as vscode from 'vscode';

const EXTENSION_ID = 'linger-studio.linger-studio';

suite('installed .vsix', () => {
  let extensionPath = '';
  const ws = () => vscode.workspace.workspaceFolders![0].uri.fsPath;

  test('is installed from the .vsix and activates', async () => {
    const ext = vscode.extensions.getExtension(EXTENSION_ID);
    assert.ok(ext, 'the extension is installed');
    extensionPath = ext.extensionPath;
    assert.match(extensionPath, /[\\/]extensions[\\/]linger-studio\.linger-studio-\d+\.\d+\.\d+/, `installed, not a development folder: ${extensionPath}`);
    assert.ok(!fs.existsSync(path.join(extensionPath, 'src')), 'no sources in the package');
    assert.ok(!fs.existsSync(path.join(extensionPath, 'node_modules')), 'no development dependencies in the package');
    await ext.activate();
    assert.equal(ext.isActive, true);
  });

  test('traces a TypeScript model file (esbuild from the package)', async function () {
    this.timeout(120_000);
    const r = await vscode.commands.executeCommand<{ after: { modules: { path: string; aheadRelu?: boolean }[] } }>('linger.traceModelFile',
      { file: path.join(ws(), 'models', 'modelB.ts'), traceOptions: {} });
    assert.ok(r, 'the trace returned');
    assert.deepEqual(r.after.modules.filter((e) => e.aheadRelu).map((e) => e.path), ['conv', 'conv1', 'conv2']);
  });

  test('runs the demo on the packaged Fashion-MNIST and exports + verifies its qdq checkpoint (onnxruntime from the package)', async function () {
    this.timeout(300_000);
    const r = await vscode.commands.executeCommand<{ stages: { stage: string; checkpoint: string }[] }>('linger.runDemo',
      { epochs: [1, 0, 1], limit: 6, experiment: 'vsix' });
    assert.ok(r, 'the demo finished');
    console.log(`    demo: ${r.stages.map((s) => s.stage).join(', ')}`);
    const fixed = r.stages.find((s) => s.stage === 'fixed')!.checkpoint;
    const e = await vscode.commands.executeCommand<{ verification: { summary: string } }>('linger.exportCheckpointOnnx', { file: fixed, dialect: 'qdq' });
    assert.equal(e.verification.summary, 'qdq: 100% of 40 outputs bit-exact in onnxruntime');
  });
});
