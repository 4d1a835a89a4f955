// A checkpoint's model file: what builds the model a checkpoint's state loads into, for export and
// for the tree of a checkpoint that stores none — a `.pt` saved by PyTorch or the real linger
// (docs/python-models.md, "Checkpoints from real linger"). Asked once per checkpoint folder and
// remembered; a PyTorch model file (.py) also needs its class and input shape, settled once per
// file by *Trace PyTorch Model…*'s prompts, and a trusted workspace (it runs the file).
import * as path from 'node:path';
import * as vscode from 'vscode';
import { CheckpointModelRequest, CheckpointSummary, PythonSpec } from '../engine/host/protocol';
import type { EngineClient } from './engineClient';
import type { ModelRoot, ModelTreeView } from './views/modelTree';
import type { PythonTraceResult } from '../engine/services/pythonModel';
import { pythonInterpreter, rememberedPython } from './pythonModel';

export interface PairedModel {
  /** none: a built-in model (DemoCNN, DemoGRU) */
  modelFile?: string;
  python?: PythonSpec;
}

const BUILTIN = new Set(['DemoCNN', 'DemoGRU']);
const pairKey = (checkpoint: string) => `linger.modelFile:${path.dirname(checkpoint)}`;

/** The folder's remembered model file (undefined: none yet). */
export function pairedModelFileOf(context: vscode.ExtensionContext, checkpoint: string): string | undefined {
  return context.workspaceState.get<string>(pairKey(checkpoint));
}

/**
 * The model file of a checkpoint: given, remembered for its folder, none for a built-in model, or
 * asked (a PyTorch model file first for a `.pt`). undefined when the user dismissed a prompt or
 * the workspace is not trusted (a message says so).
 */
export async function pairModelFile(
  context: vscode.ExtensionContext,
  checkpoint: string,
  model: string | undefined,
  given?: string,
): Promise<PairedModel | undefined> {
  let modelFile = given ?? pairedModelFileOf(context, checkpoint);
  if (!modelFile && model && BUILTIN.has(model)) return {};
  if (!modelFile) {
    const pt = /\.pth?$/i.test(checkpoint);
    const picked = await vscode.window.showOpenDialog({
      canSelectMany: false,
      openLabel: 'Use This Model File',
      title: pt
        ? `Linger: the PyTorch model file that builds ${path.basename(checkpoint)}'s model (a .py defining the nn.Module; asked once for this folder)`
        : `Linger: the model file that builds ${model ?? 'the model'} (exports createModel(), and inputShape or exampleInput())`,
      filters: pt
        ? { 'PyTorch model files': ['py'], 'TypeScript/JavaScript model files': ['ts', 'mts', 'js', 'mjs', 'cjs'] }
        : { 'Model files': ['ts', 'mts', 'js', 'mjs', 'cjs', 'py'] },
      defaultUri: vscode.Uri.file(path.dirname(checkpoint)),
    });
    modelFile = picked?.[0]?.fsPath;
    if (!modelFile) return undefined;
  }
  if (!vscode.workspace.isTrusted) {
    void vscode.window
      .showWarningMessage(
        `Linger: building the model of ${path.basename(checkpoint)} runs ${path.basename(modelFile)}; trust the workspace first.`,
        'Manage Workspace Trust',
      )
      .then((c) => c && vscode.commands.executeCommand('workbench.trust.manage'));
    return undefined;
  }
  if (!/\.py$/i.test(modelFile)) return { modelFile };
  const python = await pythonSpec(context, modelFile);
  return python && { modelFile, python };
}

/**
 * How the user's Python builds a PyTorch model file: the class and the input shape remembered for
 * it, else settled by *Trace PyTorch Model…*'s prompts (nothing is asked when the file defines
 * create_model() and example_input()); the interpreter as that command picks it. undefined when
 * dismissed or failed (the command showed why).
 */
export async function pythonSpec(context: vscode.ExtensionContext, modelFile: string): Promise<PythonSpec | undefined> {
  let spec = rememberedPython(context, modelFile);
  if (!spec) {
    const r = await vscode.commands.executeCommand<PythonTraceResult | { error: unknown } | undefined>('linger.tracePythonModel', {
      file: modelFile,
      show: false,
    });
    if (!r || 'error' in r) return undefined;
    spec = rememberedPython(context, modelFile) ?? {};
  }
  const { python } = await pythonInterpreter(vscode.Uri.file(modelFile));
  return { ...spec, python };
}

/** Remembers a model file for the checkpoint's folder once it has worked. */
export async function rememberPairing(context: vscode.ExtensionContext, checkpoint: string, modelFile: string): Promise<void> {
  await context.workspaceState.update(pairKey(checkpoint), modelFile);
}

/**
 * The tree of a checkpoint that stores none: its model built from the paired model file at the
 * checkpoint's stage, its state loaded strict (services/checkpointModel.ts), in the Model view.
 */
export async function showPairedTree(
  deps: { context: vscode.ExtensionContext; engine: EngineClient; models: ModelTreeView; output: vscode.OutputChannel },
  file: string,
  s: CheckpointSummary,
  given?: { modelFile?: string },
): Promise<ModelRoot | undefined> {
  const paired = await pairModelFile(deps.context, file, s.model, given?.modelFile);
  if (!paired) return undefined;
  if (!paired.modelFile) {
    void vscode.window.showInformationMessage(`Linger: ${path.basename(file)} stores no module tree (no linger metadata).`);
    return undefined;
  }
  try {
    const r = await vscode.window.withProgress(
      {
        location: vscode.ProgressLocation.Notification,
        title: `Linger: building ${path.basename(file)}'s model from ${path.basename(paired.modelFile)}…`,
      },
      () =>
        deps.engine.request(
          CheckpointModelRequest,
          { checkpoint: file, modelFile: paired.modelFile!, python: paired.python },
          `model of ${path.basename(file)}`,
        ),
    );
    for (const n of r.notes) deps.output.appendLine(`[model] note: ${n}`);
    await rememberPairing(deps.context, file, paired.modelFile);
    const roots = deps.models.showTree(r.tree, r.graph, { file: r.modelFile, definitions: r.definitions });
    await vscode.commands.executeCommand('linger.model.focus');
    return roots[0];
  } catch (e) {
    const choice = await vscode.window.showErrorMessage(
      `Linger: ${path.basename(file)} does not load into the model of ${path.basename(paired.modelFile)}: ${(e as Error).message}`,
      'Choose Another Model File',
      'Show Log',
    );
    if (choice === 'Choose Another Model File') {
      await deps.context.workspaceState.update(pairKey(file), undefined);
      return vscode.commands.executeCommand<ModelRoot | undefined>('linger.showModelTreeOfCheckpoint', { file });
    }
    if (choice === 'Show Log') deps.output.show(true);
    return undefined;
  }
}
