// The *Linger: New Model File* command (the texts it writes are newModelFile.ts's, which has no
// vscode import so an engine test can type-check them).
import * as path from 'node:path';
import * as vscode from 'vscode';
import { CONFIG_FILES, declarationsOf, compilerOptionsFor, modelFileText, tsconfigText } from './newModelFile';

// A model file to start from (issue 20, docs/contract.md "Model files") and, when the workspace folder has no
// tsconfig.json/jsconfig.json yet, a tsconfig.json whose `paths` map linger-studio to the declarations this
// extension ships (dist/types), so the file has no ts2307 and gets completions. Arguments (tests):
// `{ folder?: Uri, name?: string }`; without a name it asks.
export async function newModelFile(
  context: vscode.ExtensionContext,
  arg?: { folder?: vscode.Uri; name?: string },
): Promise<{ file: string; config?: string; existingConfig?: string; declarations: string } | undefined> {
  const folders = vscode.workspace.workspaceFolders ?? [];
  const folder =
    arg?.folder ??
    (folders.length > 1
      ? (await vscode.window.showWorkspaceFolderPick({ placeHolder: 'Linger: the folder of the new model file' }))?.uri
      : folders[0]?.uri);
  if (!folder) {
    if (!folders.length)
      void vscode.window.showWarningMessage(
        'Linger: open a folder first; a model file and its tsconfig.json go into the workspace folder.',
      );
    return undefined;
  }
  let name = arg?.name;
  if (!name) {
    let suggestion = 'model.ts';
    for (let i = 2; await exists(vscode.Uri.joinPath(folder, suggestion)); i++) suggestion = `model${i}.ts`;
    name = await vscode.window.showInputBox({
      title: 'Linger: New Model File',
      prompt: 'A TypeScript file exporting createModel() and inputShape, in the workspace folder',
      value: suggestion,
      valueSelection: [0, suggestion.length - 3],
      validateInput: async (v) =>
        !/^[^\\]+\.(ts|mts)$/.test(v)
          ? 'a .ts file name (a path relative to the folder)'
          : (await exists(vscode.Uri.joinPath(folder, v)))
            ? `${v} exists`
            : undefined,
    });
    if (!name) return undefined;
  }
  const file = vscode.Uri.joinPath(folder, name);
  if (await exists(file)) {
    void vscode.window.showWarningMessage(`Linger: ${name} exists; it is left as it is.`);
    return undefined;
  }
  const className =
    path
      .basename(name)
      .replace(/\.m?ts$/, '')
      .replace(/[^A-Za-z0-9]+(.)?/g, (_, c: string | undefined) => (c ?? '').toUpperCase())
      .replace(/^[0-9]+/, '')
      .replace(/^./, (c) => c.toUpperCase()) || 'Model';
  await vscode.workspace.fs.writeFile(file, new TextEncoder().encode(modelFileText(className === 'Model' ? 'SmallCNN' : className)));
  const { declarations, config, existing } = await ensureModelTypes(context, folder);
  await vscode.window.showTextDocument(file, { preview: false });
  return { file: file.fsPath, config: config?.fsPath, existingConfig: existing, declarations };
}

async function exists(uri: vscode.Uri): Promise<boolean> {
  try {
    await vscode.workspace.fs.stat(uri);
    return true;
  } catch {
    return false;
  }
}

/**
 * Makes `linger-studio` resolve for the model files of `folder`: writes a tsconfig.json mapping it
 * to the declarations this extension ships when the folder has no tsconfig/jsconfig; a config the
 * user has stays theirs, and they are told what to add.
 */
export async function ensureModelTypes(
  context: vscode.ExtensionContext,
  folder: vscode.Uri,
): Promise<{ declarations: string; config?: vscode.Uri; existing?: string }> {
  const declarations = declarationsOf(context.extensionPath);
  const existing = (
    await Promise.all(CONFIG_FILES.map(async (c) => ((await exists(vscode.Uri.joinPath(folder, c))) ? c : undefined)))
  ).find((c) => c);
  if (existing) {
    // the user's own config stays theirs: say what to add
    const paths = JSON.stringify({ paths: compilerOptionsFor(declarations).paths }, null, 2);
    void vscode.window
      .showInformationMessage(
        `Linger: ${existing} exists and is left as it is; for \`import … from 'linger-studio'\` to resolve, add to its compilerOptions: ` +
          `"paths": { "linger-studio": ["${declarations}"] } (and "skipLibCheck": true).`,
        'Copy',
      )
      .then((c) => c && vscode.env.clipboard.writeText(paths));
    return { declarations, existing };
  }
  const config = vscode.Uri.joinPath(folder, 'tsconfig.json');
  await vscode.workspace.fs.writeFile(config, new TextEncoder().encode(tsconfigText(declarations)));
  // A TypeScript server that already has files of this folder open keeps them in the project it
  // inferred without a config (seen in code-server 1.100.3: the new file showed ts2307 although
  // its own tsserver 5.8.3, started fresh on the same folder, reports nothing); restart it to read this one.
  if ((await vscode.commands.getCommands(true)).includes('typescript.restartTsServer')) {
    await Promise.resolve(vscode.commands.executeCommand('typescript.restartTsServer')).catch(() => undefined);
  }
  return { declarations, config };
}

const IMPORTS_LINGER = /\bfrom\s+['"]linger-studio['"]|require\(\s*['"]linger-studio['"]\s*\)/;

/**
 * *Linger: Set Up TypeScript for Model Files*, and its offer: a TypeScript or JavaScript file that
 * imports linger-studio in a workspace folder without a tsconfig/jsconfig shows ts2307 (the package
 * is not in node_modules); the first time one is opened in a folder, offer the config that fixes it.
 */
export function registerModelTypes(context: vscode.ExtensionContext): void {
  const setup = async (arg?: vscode.Uri | { folder?: vscode.Uri }) => {
    const uri = arg instanceof vscode.Uri ? arg : (arg?.folder ?? vscode.window.activeTextEditor?.document.uri);
    const folder =
      (uri && vscode.workspace.getWorkspaceFolder(uri)?.uri) ??
      (vscode.workspace.workspaceFolders?.length === 1 ? vscode.workspace.workspaceFolders[0].uri : undefined) ??
      (await vscode.window.showWorkspaceFolderPick({ placeHolder: 'Linger: the folder whose model files import linger-studio' }))?.uri;
    if (!folder) return undefined;
    const r = await ensureModelTypes(context, folder);
    if (r.config)
      void vscode.window.showInformationMessage(
        `Linger: wrote ${vscode.workspace.asRelativePath(r.config)}: model files here resolve 'linger-studio'.`,
      );
    return { config: r.config?.fsPath, existingConfig: r.existing, declarations: r.declarations };
  };
  context.subscriptions.push(vscode.commands.registerCommand('linger.setupModelTypes', setup));
  const offered = new Set<string>();
  const offer = async (doc: vscode.TextDocument) => {
    if (doc.uri.scheme !== 'file' || !/^(typescript|javascript)(react)?$/.test(doc.languageId) || !IMPORTS_LINGER.test(doc.getText()))
      return;
    const folder = vscode.workspace.getWorkspaceFolder(doc.uri)?.uri;
    if (!folder || offered.has(folder.fsPath) || context.workspaceState.get(`linger.modelTypes.declined:${folder.fsPath}`)) return;
    offered.add(folder.fsPath);
    const has = await Promise.all(CONFIG_FILES.map((c) => exists(vscode.Uri.joinPath(folder, c))));
    if (has.some(Boolean)) return;
    const choice = await vscode.window.showInformationMessage(
      `Linger: ${path.basename(doc.uri.fsPath)} imports 'linger-studio', which TypeScript cannot resolve in this folder (no tsconfig.json). Write one that maps it to the extension's declarations?`,
      'Write tsconfig.json',
      'Not Now',
      "Don't Ask Again",
    );
    if (choice === 'Write tsconfig.json') await setup(folder);
    else if (choice === "Don't Ask Again") await context.workspaceState.update(`linger.modelTypes.declined:${folder.fsPath}`, true);
  };
  context.subscriptions.push(vscode.workspace.onDidOpenTextDocument((d) => void offer(d)));
  for (const d of vscode.workspace.textDocuments) void offer(d);
}
