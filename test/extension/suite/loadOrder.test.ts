// Load-order diagnostics and the quick fix, in a real VS Code (SPEC §8, issue 6).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { suite, test } from 'mocha';
import * as vscode from 'vscode';

const EXTENSION_ID = 'linger-studio.linger-studio';

function workspaceUri(rel: string): vscode.Uri {
  const folder = vscode.workspace.workspaceFolders?.[0];
  assert.ok(folder, 'no workspace folder is open');
  return vscode.Uri.joinPath(folder.uri, rel);
}

/** Polls until `get` returns a value `ok` accepts (diagnostics arrive after a debounce). */
async function until<T>(get: () => T, ok: (v: T) => boolean, what: string, ms = 20000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = get();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; last value: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
const lingerDiagnostics = (uri: vscode.Uri) => vscode.languages.getDiagnostics(uri).filter((d) => d.source === 'linger');
const summary = (ds: vscode.Diagnostic[]) => ds.map((d) => `${String(d.code)}@${d.range.start.line + 1}`);

suite('load-order diagnostics', () => {
  test('a Python script: LINGER001 appears; the preferred quick fix moves the load; the diagnostic goes away', async () => {
    await vscode.extensions.getExtension(EXTENSION_ID)!.activate();
    const uri = workspaceUri('loadorder/quantize.py');
    const doc = await vscode.workspace.openTextDocument(uri);
    await vscode.window.showTextDocument(doc);
    const ds = await until(
      () => lingerDiagnostics(uri),
      (d) => d.length > 0,
      'a linger diagnostic',
    );
    assert.deepEqual(summary(ds), ['LINGER001@7']);
    assert.equal(ds[0].severity, vscode.DiagnosticSeverity.Error);
    assert.match(ds[0].message, /load the state dict after the last transform/);

    const actions = await vscode.commands.executeCommand<vscode.CodeAction[]>('vscode.executeCodeActionProvider', uri, ds[0].range);
    const fix = actions.find((a) => /^Move model\.load_state_dict\(\) after linger\.init/.test(a.title));
    assert.ok(fix?.edit, `no quick fix among: ${actions.map((a) => a.title).join(', ')}`);
    assert.equal(fix.isPreferred, true, 'the move is the preferred fix');
    assert.equal(fix.kind?.value, vscode.CodeActionKind.QuickFix.value);
    assert.ok(await vscode.workspace.applyEdit(fix.edit));
    await until(
      () => lingerDiagnostics(uri),
      (d) => d.length === 0,
      'the diagnostic to disappear',
    );
    const ext = vscode.extensions.getExtension(EXTENSION_ID)!;
    const expected = fs.readFileSync(
      path.join(ext.extensionPath, 'test', 'fixtures', 'loadorder', 'quickfix', 'in_function.after.py'),
      'utf8',
    );
    assert.equal(doc.getText(), expected);
  });

  test('diagnostics follow edits as you type (debounced)', async () => {
    const doc = await vscode.workspace.openTextDocument({
      language: 'python',
      content: 'import linger\nmodel = Net()\nmodel = linger.init(model)\n',
    });
    await vscode.window.showTextDocument(doc);
    const editor = vscode.window.activeTextEditor!;
    await editor.edit((e) => e.insert(new vscode.Position(3, 0), 'model = linger.trace_layers(model, model, x)\n'));
    const ds = await until(
      () => lingerDiagnostics(doc.uri),
      (d) => d.length > 0,
      'LINGER003 after typing',
    );
    assert.deepEqual(summary(ds), ['LINGER003@4']);
  });

  test('a TypeScript script using the engine', async () => {
    const uri = workspaceUri('loadorder/train.ts');
    await vscode.window.showTextDocument(await vscode.workspace.openTextDocument(uri));
    const ds = await until(
      () => lingerDiagnostics(uri),
      (d) => d.length > 0,
      'a diagnostic in train.ts',
    );
    assert.deepEqual(summary(ds), ['LINGER001@8']);
  });

  test('a Jupyter notebook: cells are analyzed together, the diagnostic lands on its cell', async () => {
    const nb = await vscode.workspace.openNotebookDocument(workspaceUri('loadorder/experiment.ipynb'));
    await vscode.window.showNotebookDocument(nb);
    const cell = nb.cellAt(3);
    const ds = await until(
      () => lingerDiagnostics(cell.document.uri),
      (d) => d.length > 0,
      'a diagnostic on cell 4',
    );
    assert.deepEqual(summary(ds), ['LINGER001@2']);
    for (const i of [1, 2, 5, 6]) assert.deepEqual(lingerDiagnostics(nb.cellAt(i).document.uri), [], `cell ${i + 1} is clean`);
  });

  test('"Linger: Check Load Order in Workspace" reports the counts', async () => {
    const r = await vscode.commands.executeCommand<{ files: number; errors: number; warnings: number }>('linger.checkLoadOrder');
    assert.ok(r.files >= 3, `files: ${r.files}`);
    assert.ok(r.errors >= 2, `errors: ${r.errors}`);
  });
});
