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
    assert.match(
      extensionPath,
      /[\\/]extensions[\\/]linger-studio\.linger-studio-\d+\.\d+\.\d+/,
      `installed, not a development folder: ${extensionPath}`,
    );
    assert.ok(!fs.existsSync(path.join(extensionPath, 'src')), 'no sources in the package');
    assert.ok(!fs.existsSync(path.join(extensionPath, 'node_modules')), 'no development dependencies in the package');
    await ext.activate();
    assert.equal(ext.isActive, true);
  });

  test('traces a TypeScript model file (esbuild from the package)', async function () {
    this.timeout(120_000);
    const r = await vscode.commands.executeCommand<{ after: { modules: { path: string; aheadRelu?: boolean }[] } }>(
      'linger.traceModelFile',
      { file: path.join(ws(), 'models', 'modelB.ts'), traceOptions: {} },
    );
    assert.ok(r, 'the trace returned');
    assert.deepEqual(
      r.after.modules.filter((e) => e.aheadRelu).map((e) => e.path),
      ['conv', 'conv1', 'conv2'],
    );
  });

  test('runs the demo on the packaged Fashion-MNIST and exports + verifies its qdq checkpoint (onnxruntime from the package)', async function () {
    this.timeout(300_000);
    const r = await vscode.commands.executeCommand<{ stages: { stage: string; checkpoint: string }[] }>('linger.runDemo', {
      epochs: [1, 0, 1],
      limit: 6,
      experiment: 'vsix',
    });
    assert.ok(r, 'the demo finished');
    console.log(`    demo: ${r.stages.map((s) => s.stage).join(', ')}`);
    const fixed = r.stages.find((s) => s.stage === 'fixed')!.checkpoint;
    const e = await vscode.commands.executeCommand<{ verification: { summary: string } }>('linger.exportCheckpointOnnx', {
      file: fixed,
      dialect: 'qdq',
    });
    assert.equal(e.verification.summary, 'qdq: 100% of 40 outputs bit-exact in onnxruntime');
  });

  test('runs notebook cells with the packaged kernel (esbuild, TF.js, vega and the completions index from the package)', async function () {
    this.timeout(120_000);
    const file = path.join(ws(), 'packaged.ipynb');
    const cell = (source: string) => ({
      cell_type: 'code',
      execution_count: null,
      id: Math.random().toString(16).slice(2, 10),
      metadata: {},
      outputs: [],
      source,
    });
    fs.writeFileSync(
      file,
      JSON.stringify({
        cells: [cell('const m: nn.Module = new DemoCNN();\ndisplay({ loss: [3, 2, 1.5, 1.2] });\nm.stage()')],
        metadata: {
          kernelspec: { name: 'linger', display_name: 'Linger (TypeScript)', language: 'typescript' },
          language_info: { name: 'typescript' },
        },
        nbformat: 4,
        nbformat_minor: 5,
      }),
    );
    const nb = await vscode.workspace.openNotebookDocument(vscode.Uri.file(file));
    await vscode.window.showNotebookDocument(nb);
    await vscode.commands.executeCommand('notebook.selectKernel', { id: 'linger-typescript', extension: EXTENSION_ID });
    void vscode.commands.executeCommand('notebook.execute', nb.uri);
    const t0 = Date.now();
    while (nb.cellAt(0).executionSummary?.success === undefined) {
      if (Date.now() - t0 > 100_000) throw new Error('the cell did not finish');
      await new Promise((r) => setTimeout(r, 250));
    }
    const items = nb.cellAt(0).outputs.flatMap((o) => o.items.map((i) => ({ mime: i.mime, text: new TextDecoder().decode(i.data) })));
    assert.equal(nb.cellAt(0).executionSummary?.success, true, items.map((i) => i.text).join('\n'));
    assert.ok(
      items.some((i) => i.mime === 'image/svg+xml' && i.text.startsWith('<svg')),
      'a chart rendered by the packaged vega',
    );
    assert.ok(
      items.some((i) => i.mime === 'text/plain' && i.text.includes('float')),
      'the result',
    );
    const list = (await vscode.commands.executeCommand(
      'vscode.executeCompletionItemProvider',
      nb.cellAt(0).document.uri,
      new vscode.Position(0, 13),
    )) as vscode.CompletionList;
    assert.ok(
      list.items.some((i) => (typeof i.label === 'string' ? i.label : i.label.label) === 'Module'),
      'completions from the packaged index',
    );
  });
});
