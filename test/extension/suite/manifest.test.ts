// What the manifest shows a user in a trusted workspace (issue 20): the Model view's Trace action
// (its welcome and its title) and the editor-title Trace of a model file; and *Linger: New Model
// File*: the model file and the tsconfig.json mapping `linger-studio` to the extension's shipped
// declarations (the file's type-check against them is test/engine/manifest.test.ts's). The runner
// starts code-server with --disable-workspace-trust: the workspace then counts as trusted, and VS
// Code binds its `isWorkspaceTrusted` context key to that same state
// (vscode.workspace.isTrusted). The extension API cannot read a context key or a rendered menu, so the
// test evaluates the manifest's own when clauses (as installed) against those values; the
// screenshots (test-results/trusted-*.png) show the rendered result. test/engine/manifest.test.ts
// checks that every key in those clauses is one VS Code or the extension defines.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { suite, suiteSetup, test } from 'mocha';
import * as vscode from 'vscode';
import { EXTENSION_ID, SCREENSHOT_MARKER, sleep, themedScreenshots, waitFor } from './util';

interface Api {
  contextKeys: Record<string, unknown>;
}
interface Manifest {
  contributes: {
    viewsWelcome: { view: string; contents: string; when?: string }[];
    menus: Record<string, { command: string; when?: string; group?: string }[]>;
  };
}

let api: Api;
let manifest: Manifest;
let ext: vscode.Extension<unknown>;
let ws: vscode.Uri;

/**
 * A when clause's value for the given context (VS Code's grammar for what the manifest uses: `&&`,
 * `||`, `!`, `key`, `key == value`, `key != value`); anything else fails the test, not passes it.
 */
function evaluate(when: string | undefined, context: Record<string, unknown>): boolean {
  if (when === undefined) return true;
  return when.split('||').some((any) =>
    any.split('&&').every((raw) => {
      let term = raw.trim();
      let negate = false;
      while (term.startsWith('!') && !term.startsWith('!=')) {
        negate = !negate;
        term = term.slice(1).trim();
      }
      const cmp = term.match(/^([\w.]+)\s*(==|!=)\s*([^\s]+)$/);
      let v: boolean;
      if (cmp) v = (String(context[cmp[1]]) === cmp[3]) === (cmp[2] === '==');
      else {
        assert.match(term, /^[\w.]+$/, `the test cannot evaluate '${raw}' of '${when}'`);
        v = term === 'true' ? true : term === 'false' ? false : !!context[term];
      }
      return negate ? !v : v;
    }),
  );
}

async function screenshot(name: string): Promise<void> {
  await vscode.commands.executeCommand('notifications.clearAll');
  await sleep(1200);
  console.log(SCREENSHOT_MARKER + name);
  await sleep(1500);
}

suiteSetup(async function () {
  this.timeout(120_000);
  ext = vscode.extensions.getExtension(EXTENSION_ID)!;
  api = (await ext.activate()) as Api;
  manifest = ext.packageJSON as Manifest;
  ws = vscode.workspace.workspaceFolders![0].uri;
});

suite('trusted workspace', () => {
  test('the workspace is trusted (--disable-workspace-trust), as isWorkspaceTrusted says', () => {
    // the trust service's state, which VS Code's isWorkspaceTrusted context key is bound to
    assert.equal(vscode.workspace.isTrusted, true);
  });

  test('the Model view offers Trace (welcome and title), not Manage Workspace Trust', async function () {
    this.timeout(60_000);
    const context = { isWorkspaceTrusted: vscode.workspace.isTrusted, view: 'linger.model' };
    const welcome = manifest.contributes.viewsWelcome.filter((w) => w.view === 'linger.model' && evaluate(w.when, context));
    assert.equal(welcome.length, 1, `welcome contents shown: ${welcome.map((w) => w.when).join(', ')}`);
    assert.match(welcome[0].contents, /\(command:linger\.traceModelFile\)/);
    assert.match(welcome[0].contents, /\(command:linger\.newModelFile\)/);
    assert.match(welcome[0].contents, /\(command:linger\.tracePythonModel\)/);
    assert.doesNotMatch(welcome[0].contents, /workbench\.trust\.manage/);
    const title = manifest.contributes.menus['view/title'].filter((m) => evaluate(m.when, context)).map((m) => m.command);
    assert.ok(title.includes('linger.traceModelFile') && title.includes('linger.newModelFile'), `Model view title: ${title.join(', ')}`);
    // the commands behind them exist (the links and buttons run these)
    const commands = await vscode.commands.getCommands(true);
    for (const c of ['linger.traceModelFile', 'linger.newModelFile']) assert.ok(commands.includes(c), c);
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    await vscode.commands.executeCommand('linger.model.focus');
    await screenshot('trusted-model-view');
    await themedScreenshots(screenshot, 'first-screen');
  });

  test('the editor title of a model file has Trace', async function () {
    this.timeout(60_000);
    const file = vscode.Uri.joinPath(ws, 'models', 'modelA.ts');
    await vscode.window.showTextDocument(file, { preview: false });
    await waitFor('linger.isModelFile', () => api.contextKeys['linger.isModelFile'] === true, 20_000);
    const context = { isWorkspaceTrusted: vscode.workspace.isTrusted, 'linger.isModelFile': api.contextKeys['linger.isModelFile'] };
    const shown = manifest.contributes.menus['editor/title'].filter((m) => evaluate(m.when, context)).map((m) => m.command);
    assert.deepEqual(shown, ['linger.traceModelFile']);
    // and not in an untrusted workspace, nor on a file that is no model file
    assert.deepEqual(
      manifest.contributes.menus['editor/title'].filter((m) => evaluate(m.when, { ...context, isWorkspaceTrusted: false })),
      [],
    );
    await vscode.window.showTextDocument(vscode.Uri.joinPath(ws, 'train.py'), { preview: false });
    await waitFor('linger.isModelFile false on train.py', () => api.contextKeys['linger.isModelFile'] === false, 20_000);
    await vscode.window.showTextDocument(file, { preview: false });
    await waitFor('linger.isModelFile again', () => api.contextKeys['linger.isModelFile'] === true, 20_000);
    await screenshot('trusted-editor-title');
  });
});

suite('New Model File', () => {
  test('writes a model file and a tsconfig.json whose paths map linger-studio to the shipped declarations', async function () {
    this.timeout(120_000);
    const name = 'newModel.ts';
    const file = vscode.Uri.joinPath(ws, name);
    const config = vscode.Uri.joinPath(ws, 'tsconfig.json');
    assert.ok(!fs.existsSync(file.fsPath) && !fs.existsSync(config.fsPath), 'the workspace starts without them');
    try {
      const r = await vscode.commands.executeCommand<{ file: string; config?: string; existingConfig?: string; declarations: string }>(
        'linger.newModelFile',
        { name },
      );
      assert.ok(r);
      assert.equal(r.file, file.fsPath);
      assert.equal(r.config, config.fsPath);
      const text = fs.readFileSync(file.fsPath, 'utf8');
      assert.match(text, /import \{ nn, Tensor \} from 'linger-studio';/);
      assert.match(text, /export function createModel\(\)/);
      assert.match(text, /export const inputShape = \[1, 1, 28, 28\]/);
      const tsconfig = JSON.parse(fs.readFileSync(config.fsPath, 'utf8')) as { compilerOptions: { paths: Record<string, string[]> } };
      const declarations = path.join(ext.extensionPath, 'dist', 'types', 'index.d.ts');
      assert.deepEqual(tsconfig.compilerOptions.paths['linger-studio'], [declarations.split(path.sep).join('/')]);
      assert.ok(fs.existsSync(declarations), 'the extension ships its declarations');
      assert.equal(vscode.window.activeTextEditor?.document.uri.fsPath, file.fsPath, 'the new file is open');
      await waitFor('linger.isModelFile on the new file', () => api.contextKeys['linger.isModelFile'] === true, 20_000);

      // That the file type-checks against those declarations (no ts2307, nn's layers resolved) is
      // test/engine/manifest.test.ts's (the TypeScript compiler API on the same text and config). Here
      // VS Code's own TypeScript server did not answer completions within 90 s on the shared machine
      // (a first attempt), so it is not asserted; the screenshot shows the file as the editor has it
      // (before the command restarted the TypeScript server, it still showed ts2307 there).
      await sleep(15_000);
      await screenshot('new-model-file');

      // a second one leaves the (now existing) tsconfig.json alone
      const r2 = await vscode.commands.executeCommand<{ file: string; config?: string; existingConfig?: string }>('linger.newModelFile', {
        name: 'otherModel.ts',
      });
      assert.equal(r2.config, undefined);
      assert.equal(r2.existingConfig, 'tsconfig.json');
      assert.deepEqual(JSON.parse(fs.readFileSync(config.fsPath, 'utf8')), tsconfig);
    } finally {
      await vscode.commands.executeCommand('workbench.action.closeAllEditors');
      for (const f of [name, 'otherModel.ts', 'tsconfig.json']) fs.rmSync(path.join(ws.fsPath, f), { force: true });
    }
  });

  test('Set Up TypeScript for Model Files: existing model files get the same tsconfig.json; a second run keeps it', async function () {
    this.timeout(60_000);
    const config = vscode.Uri.joinPath(ws, 'tsconfig.json');
    assert.ok(!fs.existsSync(config.fsPath));
    try {
      const r = await vscode.commands.executeCommand<{ config?: string; existingConfig?: string; declarations: string }>(
        'linger.setupModelTypes',
        vscode.Uri.joinPath(ws, 'models', 'modelA.ts'),
      );
      assert.equal(r.config, config.fsPath);
      const tsconfig = JSON.parse(fs.readFileSync(config.fsPath, 'utf8')) as { compilerOptions: { paths: Record<string, string[]> } };
      assert.deepEqual(tsconfig.compilerOptions.paths['linger-studio'], [r.declarations]);
      const again = await vscode.commands.executeCommand<{ config?: string; existingConfig?: string }>('linger.setupModelTypes', {
        folder: ws,
      });
      assert.equal(again.config, undefined);
      assert.equal(again.existingConfig, 'tsconfig.json');
    } finally {
      fs.rmSync(config.fsPath, { force: true });
    }
  });
});
