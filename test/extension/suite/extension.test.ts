// The extension inside a real VS Code extension host (code-server 4.100.3 = VS Code 1.100.3).
import assert from 'node:assert/strict';
import { suite, test } from 'mocha';
import * as vscode from 'vscode';

const EXTENSION_ID = 'linger-studio.linger-studio'; // publisher.name from package.json

suite('extension', () => {
  test('activates', async () => {
    const ext = vscode.extensions.getExtension(EXTENSION_ID);
    assert.ok(ext, `${EXTENSION_ID} is not loaded in the extension host`);
    await ext.activate();
    assert.equal(ext.isActive, true);
  });

  test('registers linger.showBackend', async () => {
    const commands = await vscode.commands.getCommands(true);
    assert.ok(commands.includes('linger.showBackend'));
  });

  test('linger.showBackend loads the engine and returns its TF.js backend', async () => {
    // tfjs-node cannot install on CI machines, so the engine falls back to wasm, then cpu.
    const backend = await vscode.commands.executeCommand<string>('linger.showBackend');
    assert.ok(backend === 'wasm' || backend === 'cpu', `unexpected backend ${String(backend)}`);
  });
});

suite('workspace', () => {
  test('opens a file of the test workspace', async () => {
    const folder = vscode.workspace.workspaceFolders?.[0];
    assert.ok(folder, 'no workspace folder is open');
    const uri = vscode.Uri.joinPath(folder.uri, 'train.py');
    const doc = await vscode.workspace.openTextDocument(uri);
    await vscode.window.showTextDocument(doc);
    assert.ok(
      vscode.workspace.textDocuments.some((d) => d.uri.toString() === uri.toString()),
      `${uri.toString()} is not among workspace.textDocuments`,
    );
    assert.equal(doc.languageId, 'python');
    assert.match(doc.getText(), /linger\.trace_layers/);
  });
});
