// *Linger: Export as PyTorch Project…* (docs/scale-out.md): a checkpoint (or a model file) as a
// folder that continues the experiment on PyTorch + linger under torchrun — model.py, the
// weights, recipe.json, train.py, README.md — written by the engine (export/pytorch/project.ts).
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { CheckpointSummaryRequest, ExportPytorchRequest } from '../engine/host/protocol';
import type { PytorchExportResult } from '../engine/export/pytorch/project';
import type { EngineClient } from './engineClient';
import { pairModelFile, rememberPairing } from './pairing';

type Arg =
  vscode.Uri | { file?: string; uri?: vscode.Uri; kind?: string; outDir?: string; data?: boolean; force?: boolean; modelFile?: string };

export function registerExportPytorch(context: vscode.ExtensionContext, engine: EngineClient, output: vscode.OutputChannel): void {
  context.subscriptions.push(
    vscode.commands.registerCommand('linger.exportPytorchProject', async (arg?: Arg): Promise<PytorchExportResult | undefined> => {
      const given = arg instanceof vscode.Uri ? { file: arg.fsPath } : { ...arg, file: arg?.file ?? arg?.uri?.fsPath };
      let file = given.file ?? vscode.window.activeTextEditor?.document.uri.fsPath;
      if (!file || !/\.(safetensors|pth?|[cm]?[tj]s)$/i.test(file)) {
        const picked = await vscode.window.showOpenDialog({
          canSelectMany: false,
          openLabel: 'Export',
          title: 'Linger: the checkpoint (or TypeScript model file) to continue on PyTorch + linger',
          filters: { 'Checkpoints and model files': ['safetensors', 'pt', 'pth', 'ts', 'mts', 'js', 'mjs'] },
        });
        file = picked?.[0]?.fsPath;
      }
      if (!file) return undefined;
      const isCheckpoint = /\.(safetensors|pth?)$/i.test(file);
      let modelFile = isCheckpoint ? given.modelFile : file;
      if (isCheckpoint) {
        let model: string | undefined;
        try {
          model = (await engine.request(CheckpointSummaryRequest, { file }, `read ${path.basename(file)}`)).model;
        } catch (e) {
          void vscode.window.showErrorMessage(`Linger: ${path.basename(file)} is not a readable checkpoint: ${(e as Error).message}`);
          return undefined;
        }
        const paired = await pairModelFile(context, file, model, given.modelFile);
        if (!paired) return undefined;
        if (paired.python) {
          void vscode.window.showInformationMessage(
            `Linger: ${path.basename(file)}'s model is already a PyTorch model (${path.basename(paired.modelFile!)}): train it with linger there directly.`,
          );
          return undefined;
        }
        modelFile = paired.modelFile;
      } else if (!vscode.workspace.isTrusted) {
        void vscode.window.showWarningMessage(`Linger: exporting ${path.basename(file)} runs it; trust the workspace first.`);
        return undefined;
      }
      const suggestion = path.join(
        path.dirname(isCheckpoint ? path.dirname(file) : file),
        `${path.basename(isCheckpoint ? path.dirname(file) : file).replace(/\.[^.]+$/, '')}-pytorch`,
      );
      const outDir =
        given.outDir ??
        (await vscode.window.showInputBox({
          title: 'Linger: Export as PyTorch Project',
          prompt: 'The folder for model.py, the weights, recipe.json, train.py and README.md',
          value: suggestion,
          validateInput: (v) => (v.trim() ? undefined : 'a folder'),
        }));
      if (!outDir) return undefined;
      let force = given.force ?? false;
      if (!force && fs.existsSync(path.join(outDir, 'train.py'))) {
        const yes = await vscode.window.showWarningMessage(
          `${outDir} already holds an exported project.`,
          { modal: true, detail: 'Its model.py, weights, recipe.json, train.py and README.md are replaced; other files stay.' },
          'Replace',
        );
        if (yes !== 'Replace') return undefined;
        force = true;
      }
      try {
        const r = await vscode.window.withProgress(
          { location: vscode.ProgressLocation.Notification, title: `Linger: exporting ${path.basename(file)} as a PyTorch project…` },
          () =>
            engine.request(
              ExportPytorchRequest,
              { checkpoint: isCheckpoint ? file : undefined, modelFile, outDir, data: given.data, force },
              `export-pytorch ${path.basename(file)}`,
            ),
        );
        if (isCheckpoint && modelFile) await rememberPairing(context, file, modelFile);
        for (const n of r.notes) output.appendLine(`[export-pytorch] note: ${n}`);
        void vscode.window
          .showInformationMessage(
            `Linger: ${r.model} (${r.stage} stage) exported to ${vscode.workspace.asRelativePath(r.dir)}: ${r.files.length} files. Its README says how to run train.py on one GPU, N GPUs or a cluster.`,
            'Open README',
            'Reveal in Explorer',
          )
          .then((c) => {
            if (c === 'Open README')
              void vscode.commands.executeCommand('markdown.showPreview', vscode.Uri.file(path.join(r.dir, 'README.md')));
            else if (c === 'Reveal in Explorer') void vscode.commands.executeCommand('revealInExplorer', vscode.Uri.file(r.dir));
          });
        return r;
      } catch (e) {
        void vscode.window
          .showErrorMessage(
            `Linger: cannot export ${path.basename(file)} as a PyTorch project: ${(e as Error).message} — nothing was written`,
            'Show Log',
          )
          .then((c) => c && output.show(true));
        return undefined;
      }
    }),
  );
}
