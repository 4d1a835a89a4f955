// The notebook workflow's commands: New Experiment Notebook, Restart Linger Kernel, and the
// Checkpoints view's Load into Notebook Model.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { serializeNotebook } from '../../engine/notebook/nbformat';
import { experimentNotebook } from '../../engine/notebook/template';
import type { CheckpointNode } from '../views/checkpoints';
import { CONTROLLER_ID, LingerNotebookController } from './controller';

/** experiment.ipynb, or experiment-2.ipynb, … : the first name not taken in `dir`. */
function freeName(dir: string): string {
  for (let i = 1; ; i++) {
    const f = path.join(dir, i === 1 ? 'experiment.ipynb' : `experiment-${i}.ipynb`);
    if (!fs.existsSync(f)) return f;
  }
}

/** The notebook a command acts on: the active one, else the one whose kernel ran last. */
function targetNotebook(controller: LingerNotebookController): vscode.NotebookDocument | undefined {
  const active = vscode.window.activeNotebookEditor?.notebook;
  if (active && controller.kernelOf(active)) return active;
  return controller.lastNotebook && !controller.lastNotebook.isClosed ? controller.lastNotebook : active;
}

export function registerNotebookCommands(context: vscode.ExtensionContext, controller: LingerNotebookController): void {
  const reg = (id: string, fn: (...args: any[]) => unknown) => context.subscriptions.push(vscode.commands.registerCommand(id, fn)); // eslint-disable-line @typescript-eslint/no-explicit-any

  reg('linger.newExperimentNotebook', async (target?: vscode.Uri, options?: { quick?: boolean }) => {
    const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    let uri = target instanceof vscode.Uri ? target : undefined;
    if (!uri) {
      if (folder) uri = vscode.Uri.file(freeName(folder));
      else
        uri = await vscode.window.showSaveDialog({
          filters: { 'Jupyter notebook': ['ipynb'] },
          defaultUri: vscode.Uri.file('experiment.ipynb'),
        });
    }
    if (!uri) return undefined;
    const experiment = path.basename(uri.fsPath, '.ipynb');
    const nb = experimentNotebook({ quick: options?.quick ?? true, experiment });
    await vscode.workspace.fs.writeFile(uri, Buffer.from(serializeNotebook(nb)));
    const doc = await vscode.workspace.openNotebookDocument(uri);
    await vscode.window.showNotebookDocument(doc);
    // the template names the Linger kernel; select it so "Run All" runs right away
    await vscode.commands.executeCommand('notebook.selectKernel', { id: CONTROLLER_ID, extension: context.extension.id });
    return uri;
  });

  reg('linger.restartKernel', async () => {
    const nb = targetNotebook(controller);
    if (!nb || !controller.kernelOf(nb)) {
      void vscode.window.showInformationMessage('Linger: no Linger kernel is running for this notebook');
      return false;
    }
    await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: 'Restarting the Linger kernel…' }, () =>
      controller.restart(nb),
    );
    void vscode.window.setStatusBarMessage('Linger kernel restarted: every variable was cleared', 4000);
    return true;
  });

  reg('linger.loadIntoNotebookModel', async (node?: CheckpointNode, pick?: string) => {
    if (node?.kind !== 'checkpoint') return undefined;
    const nb = targetNotebook(controller);
    const kernel = nb && controller.kernelOf(nb);
    if (!nb || !kernel?.running) {
      void vscode.window.showWarningMessage(
        'Linger: open a notebook and run a cell with the Linger (TypeScript) kernel first: the checkpoint loads into one of its models',
      );
      return undefined;
    }
    try {
      const models = await kernel.listModules();
      if (!models.length) {
        void vscode.window.showWarningMessage(`Linger: the kernel of ${path.basename(nb.uri.path)} has no nn.Module variable to load into`);
        return undefined;
      }
      const stage = node.summary.stage;
      const name =
        pick ??
        (
          await vscode.window.showQuickPick(
            models.map((m) => ({
              label: m.name,
              description: `${m.type} · ${m.stage} stage · ${m.parameters.toLocaleString('en-US')} parameters`,
              detail: m.stage === stage ? undefined : `the checkpoint is ${stage}-stage`,
            })),
            { title: `Load ${path.basename(node.uri.fsPath)} (${stage} stage) into…`, placeHolder: "a model of the notebook's kernel" },
          )
        )?.label;
      if (!name) return undefined;
      const r = await kernel.loadCheckpoint(name, node.uri.fsPath);
      const extra = [
        ...(r.missingKeys.length ? [`${r.missingKeys.length} missing`] : []),
        ...(r.unexpectedKeys.length ? [`${r.unexpectedKeys.length} unexpected`] : []),
      ];
      void vscode.window.showInformationMessage(
        `Linger: loaded ${path.basename(node.uri.fsPath)} into ${name} (${r.stage} stage)${extra.length ? `; keys: ${extra.join(', ')}` : ''}`,
      );
      return r;
    } catch (e) {
      void vscode.window.showErrorMessage(`Linger: ${(e as Error).message} — nothing was changed`);
      return { error: (e as Error).message };
    }
  });
}
