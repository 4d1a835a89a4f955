// *Linger: Trace PyTorch Model…*: a user's Python model file in the Model view and the graph
// editor (docs/python-models.md). Their own Python builds the model (the Python extension's
// interpreter when installed, else linger.pythonPath, else python3) — only in a trusted workspace,
// since it runs the file. The class and the input shape are asked when the file does not say them
// (create_model(), example_input()) and remembered per file.
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { TraceOptions } from '../engine/linger/transforms';
import { PythonTraceParams, PythonTraceReply, TracePythonModelRequest } from '../engine/host/protocol';
import type { PythonTraceResult } from '../engine/services/pythonModel';
import { EngineClient } from './engineClient';
import type { GraphView } from './views/graph';
import type { ModelTreeView } from './views/modelTree';
import type { ChipChecks } from './chip';

/** A Python file that defines an nn.Module subclass (the editor-title action's context key). */
export const PYTHON_MODEL = /^\s*class\s+\w+\s*\([^)]*\b(nn\.)?Module\b/m;

interface Remembered {
  className?: string;
  inputShape?: number[];
}

/** The class and the input shape a PyTorch model file was last built with (per workspace). */
const key = (file: string) => `linger.pythonModel:${file}`;
export const rememberedPython = (context: vscode.ExtensionContext, file: string): Remembered | undefined =>
  context.workspaceState.get<Remembered>(key(file));

/** The interpreter: the Python extension's selected one, else linger.pythonPath, else python3. */
export async function pythonInterpreter(resource?: vscode.Uri): Promise<{ python: string; from: string }> {
  const ms = vscode.extensions.getExtension('ms-python.python');
  if (ms) {
    try {
      const api = (ms.isActive ? ms.exports : await ms.activate()) as
        { environments?: { getActiveEnvironmentPath(r?: vscode.Uri): { path: string } } } | undefined;
      const p = api?.environments?.getActiveEnvironmentPath(resource)?.path;
      if (p) return { python: p, from: 'the Python extension' };
    } catch {
      /* fall through to the setting */
    }
  }
  const configured = vscode.workspace.getConfiguration('linger', resource).get<string>('pythonPath', '');
  if (configured) return { python: configured, from: 'linger.pythonPath' };
  return { python: 'python3', from: 'the default' };
}

const parseShape = (v: string): number[] | undefined => {
  const dims = v
    .split(/[,\sx×]+/)
    .filter(Boolean)
    .map(Number);
  return dims.length && dims.every((d) => Number.isInteger(d) && d > 0) ? dims : undefined;
};

export function registerPythonModel(
  context: vscode.ExtensionContext,
  engine: EngineClient,
  models: ModelTreeView,
  modelTreeView: vscode.TreeView<unknown>,
  graph: GraphView,
  output: vscode.OutputChannel,
  pickTraceOptions: (file: string) => Promise<TraceOptions | undefined>,
  chip: ChipChecks,
): void {
  context.subscriptions.push(
    vscode.commands.registerCommand(
      'linger.tracePythonModel',
      async (
        arg?:
          | vscode.Uri
          | {
              file?: string;
              className?: string;
              inputShape?: number[];
              traceOptions?: TraceOptions;
              python?: string;
              /** false: settle the class and the shape (asked, remembered) without showing the model (a checkpoint's pairing) */
              show?: boolean;
            },
      ) => {
        let file = arg instanceof vscode.Uri ? arg.fsPath : arg?.file;
        if (!file && arg === undefined) {
          const doc = vscode.window.activeTextEditor?.document;
          if (doc?.languageId === 'python' && doc.uri.scheme === 'file') file = doc.uri.fsPath;
        }
        if (!file) {
          const picked = await vscode.window.showOpenDialog({
            canSelectMany: false,
            openLabel: 'Trace',
            title: 'Linger: a PyTorch model file (defines an nn.Module; create_model() and example_input() optional)',
            filters: { Python: ['py'] },
          });
          file = picked?.[0]?.fsPath;
        }
        if (!file) return undefined;
        if (!vscode.workspace.isTrusted) {
          void vscode.window
            .showWarningMessage(
              `Linger: tracing ${path.basename(file)} runs it in your Python; trust the workspace first.`,
              'Manage Workspace Trust',
            )
            .then((c) => c && vscode.commands.executeCommand('workbench.trust.manage'));
          return undefined;
        }
        const { show: showIt = true, ...opts } = arg instanceof vscode.Uri ? {} : (arg ?? {});
        const traceOptions = opts.traceOptions ?? (showIt ? await pickTraceOptions(file) : {});
        if (!traceOptions) return undefined;
        const { python, from } = opts.python ? { python: opts.python, from: 'the caller' } : await pythonInterpreter(vscode.Uri.file(file));
        const remembered: Remembered = { ...context.workspaceState.get<Remembered>(key(file)), ...opts };
        const f = file;
        const doc = vscode.workspace.textDocuments.find((d) => d.uri.fsPath === f);
        if (doc?.isDirty) await doc.save();
        for (let attempt = 0; attempt < 4; attempt++) {
          const params: PythonTraceParams = { file: f, python, traceOptions, ...remembered };
          let reply: PythonTraceReply;
          try {
            reply = await vscode.window.withProgress(
              {
                location: vscode.ProgressLocation.Notification,
                title: `Linger: tracing ${path.basename(f)} in ${python}…`,
                cancellable: true,
              },
              (_, token) => engine.cancellable(TracePythonModelRequest, params, `trace ${path.basename(f)}`, token),
            );
          } catch (e) {
            void vscode.window
              .showErrorMessage(`Linger: cannot trace ${path.basename(f)}: ${(e as Error).message}`, 'Show Log')
              .then((c) => c && output.show(true));
            return undefined;
          }
          if (reply.ok) {
            await context.workspaceState.update(key(f), {
              // the class only when it was picked or given: otherwise create_model() (or the only class) builds it
              className: remembered.className,
              inputShape: reply.result.exampleInput ? undefined : reply.result.inputShape,
            });
            return showIt ? show(reply.result) : reply.result;
          }
          output.appendLine(`[python] ${reply.message}`);
          if (reply.kind === 'choose-class' && reply.classes.length && !opts.className) {
            const pick = await vscode.window.showQuickPick(reply.classes, {
              title: `Linger: which nn.Module of ${path.basename(f)} to trace?`,
              placeHolder: 'the class is built with no arguments (define create_model() to pass some)',
            });
            if (!pick) return undefined;
            remembered.className = pick;
            continue;
          }
          if (reply.kind === 'input-shape' && !opts.inputShape) {
            const v = await vscode.window.showInputBox({
              title: `Linger: the input shape of ${path.basename(f)}`,
              prompt: 'batch first, e.g. 1,1,28,28 (asked once; define example_input() in the file to skip this)',
              value: remembered.inputShape?.join(',') ?? '1,1,28,28',
              validateInput: (s) => (parseShape(s) ? undefined : 'positive whole numbers separated by commas'),
            });
            const shape = v ? parseShape(v) : undefined;
            if (!shape) return undefined;
            remembered.inputShape = shape;
            continue;
          }
          const actions = [
            ...(reply.frame && path.resolve(reply.frame.file) === path.resolve(f) ? ['Go to Line'] : []),
            ...(reply.kind === 'no-torch' || reply.kind === 'no-python' ? ['Set Python Path'] : []),
            ...(reply.kind === 'forward' || reply.kind === 'input-shape' ? ['Change Input Shape'] : []),
            'Show Log',
          ];
          const choice = await vscode.window.showErrorMessage(`Linger: ${reply.message} (Python: ${python}, from ${from})`, ...actions);
          if (choice === 'Go to Line' && reply.frame) {
            const line = Math.max(0, reply.frame.line - 1);
            await vscode.window.showTextDocument(vscode.Uri.file(f), { selection: new vscode.Range(line, 0, line, 0) });
          } else if (choice === 'Set Python Path')
            void vscode.commands.executeCommand('workbench.action.openSettings', 'linger.pythonPath');
          else if (choice === 'Change Input Shape') {
            await context.workspaceState.update(key(f), { ...remembered, inputShape: undefined });
            void vscode.commands.executeCommand('linger.tracePythonModel', {
              file: f,
              traceOptions,
              ...(remembered.className ? { className: remembered.className } : {}),
            });
          } else if (choice === 'Show Log') output.show(true);
          return { error: reply };
        }
        return undefined;
      },
    ),
  );

  async function show(r: PythonTraceResult): Promise<PythonTraceResult> {
    const roots = models.showTrace(r);
    // the chip's rules on it, as diagnostics at the Python definitions and on the rows (chip.ts)
    void chip.check(r.file, { ...rememberedPython(context, r.file), python: r.python });
    await vscode.commands.executeCommand('linger.model.focus');
    await modelTreeView.reveal(roots[1], { expand: true, select: false, focus: false });
    if (r.graph)
      void graph.show(
        { title: `${path.basename(r.file)} — after traceLayers`, graph: r.graph, modules: r.after.modules, file: r.file },
        { preserveFocus: true },
      );
    return r;
  }
}
