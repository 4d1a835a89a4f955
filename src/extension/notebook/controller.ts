// The notebook controller "Linger (TypeScript)" for Jupyter notebooks: runs TypeScript cells in a
// kernel process per notebook (kernelProcess.ts), in order, one at a time; streams their outputs
// as Jupyter MIME bundles (the built-in ipynb serializer saves them as nbformat outputs);
// interrupts and restarts; follows what cells do in the Model and Checkpoints views.
import * as path from 'node:path';
import * as os from 'node:os';
import * as vscode from 'vscode';
import type { KernelEvent, NbOutput } from '../../engine/notebook/messages';
import { LINGER_KERNELSPEC, LINGER_LANGUAGE_INFO } from '../../engine/notebook/nbformat';
import { pythonInterpreter } from '../pythonModel';
import { KernelDiedError, KernelProcess } from './kernelProcess';

export const CONTROLLER_ID = 'linger-typescript';

type Json = Record<string, unknown>;

/** The notebook's own (nbformat) metadata as VS Code's ipynb serializer keeps it. */
export function jupyterMetadata(nb: vscode.NotebookDocument): Json {
  const m = nb.metadata as Json;
  return ((m.metadata as Json | undefined) ?? ((m.custom as Json | undefined)?.metadata as Json | undefined) ?? {}) as Json;
}

export function isLingerNotebook(nb: vscode.NotebookDocument): boolean {
  return nb.notebookType === 'jupyter-notebook' && (jupyterMetadata(nb).kernelspec as Json | undefined)?.name === LINGER_KERNELSPEC.name;
}

const TEXT_MIMES = /^(text\/|image\/svg\+xml$)/;

function items(data: Json): vscode.NotebookCellOutputItem[] {
  return Object.entries(data).map(([mime, v]) =>
    typeof v === 'string' && TEXT_MIMES.test(mime)
      ? vscode.NotebookCellOutputItem.text(v, mime)
      : vscode.NotebookCellOutputItem.json(v, mime),
  );
}

/** One cell's run: Jupyter outputs → the cell's outputs, streams appended, displays replaced in place. */
class CellRun {
  private displays = new Map<string, vscode.NotebookCellOutput>();
  private lastStream: { name: string; output: vscode.NotebookCellOutput } | undefined;
  private chain: Thenable<void> = Promise.resolve();
  constructor(readonly execution: vscode.NotebookCellExecution) {}

  apply(o: NbOutput): Thenable<void> {
    this.chain = this.chain.then(() => this.applyNow(o));
    return this.chain;
  }

  private async applyNow(o: NbOutput): Promise<void> {
    const ex = this.execution;
    if (o.output_type === 'stream') {
      const item = o.name === 'stderr' ? vscode.NotebookCellOutputItem.stderr(o.text) : vscode.NotebookCellOutputItem.stdout(o.text);
      if (this.lastStream?.name === o.name) return ex.appendOutputItems(item, this.lastStream.output);
      const output = new vscode.NotebookCellOutput([item], { outputType: 'stream' });
      this.lastStream = { name: o.name, output };
      return ex.appendOutput(output);
    }
    this.lastStream = undefined;
    if (o.output_type === 'error') {
      const output = new vscode.NotebookCellOutput(
        [vscode.NotebookCellOutputItem.error({ name: o.ename, message: o.evalue, stack: o.traceback.join('\n') })],
        { outputType: 'error', originalError: { ename: o.ename, evalue: o.evalue, traceback: o.traceback } },
      );
      return ex.appendOutput(output);
    }
    if (o.output_type === 'update_display_data') {
      const target = this.displays.get(o.transient.display_id);
      if (target) return ex.replaceOutputItems(items(o.data), target);
      return;
    }
    const meta: Json =
      o.output_type === 'execute_result'
        ? { outputType: 'execute_result', executionCount: o.execution_count, metadata: o.metadata ?? {} }
        : { outputType: 'display_data', metadata: o.metadata ?? {} };
    const output = new vscode.NotebookCellOutput(items(o.data), meta);
    if (o.output_type === 'display_data' && o.transient) this.displays.set(o.transient.display_id, output);
    return ex.appendOutput(output);
  }

  flush(): Thenable<void> {
    return this.chain;
  }
}

export interface KernelEvents {
  onModel(e: Extract<KernelEvent, { kind: 'model' }>, notebook: vscode.NotebookDocument): void;
  onSaved(e: Extract<KernelEvent, { kind: 'saved' }>, notebook: vscode.NotebookDocument): void;
}

export class LingerNotebookController implements vscode.Disposable {
  readonly controller: vscode.NotebookController;
  private readonly kernels = new Map<string, KernelProcess>();
  /** per notebook: the cells run in order, one at a time */
  private readonly queues = new Map<string, Promise<unknown>>();
  /** per notebook: run requests so far, and the last one a failing cell cancelled */
  private readonly requests = new Map<string, number>();
  private readonly abortedUpTo = new Map<string, number>();
  private readonly disposables: vscode.Disposable[] = [];
  /** the notebook whose kernel last ran a cell (for "Load into Notebook Model" from a view) */
  lastNotebook: vscode.NotebookDocument | undefined;

  constructor(
    private readonly extensionPath: string,
    private readonly output: vscode.OutputChannel,
    private readonly events: KernelEvents,
  ) {
    const c = vscode.notebooks.createNotebookController(CONTROLLER_ID, 'jupyter-notebook', 'Linger (TypeScript)');
    c.supportedLanguages = ['typescript', 'javascript'];
    c.supportsExecutionOrder = true;
    c.description = 'TypeScript cells with the Linger engine preloaded';
    c.detail = 'nn, F, linger, optim, data, fit, evaluate, DemoCNN, display, chart';
    c.executeHandler = (cells, nb) => this.run(cells, nb);
    c.interruptHandler = (nb) => this.interrupt(nb);
    this.controller = c;
    for (const nb of vscode.workspace.notebookDocuments) this.prefer(nb);
    this.disposables.push(
      c,
      vscode.workspace.onDidOpenNotebookDocument((nb) => this.prefer(nb)),
      vscode.workspace.onDidCloseNotebookDocument((nb) => this.shutdown(nb)),
      c.onDidChangeSelectedNotebooks(({ notebook, selected }) => {
        if (selected) void this.markAsLinger(notebook);
        else this.shutdown(notebook);
      }),
    );
  }

  /** Notebooks made for Linger (kernelspec "linger") offer this controller first. */
  private prefer(nb: vscode.NotebookDocument): void {
    if (isLingerNotebook(nb)) this.controller.updateNotebookAffinity(nb, vscode.NotebookControllerAffinity.Preferred);
  }

  /** Selecting the kernel records it in the notebook (kernelspec and language), as Jupyter does. */
  private async markAsLinger(nb: vscode.NotebookDocument): Promise<void> {
    if (nb.notebookType !== 'jupyter-notebook' || isLingerNotebook(nb)) return;
    const meta = nb.metadata as Json;
    const inner = { ...jupyterMetadata(nb), kernelspec: { ...LINGER_KERNELSPEC }, language_info: { ...LINGER_LANGUAGE_INFO } };
    const edit = new vscode.WorkspaceEdit();
    edit.set(nb.uri, [vscode.NotebookEdit.updateNotebookMetadata({ ...meta, metadata: inner })]);
    await vscode.workspace.applyEdit(edit);
  }

  kernelOf(nb: vscode.NotebookDocument): KernelProcess | undefined {
    return this.kernels.get(nb.uri.toString());
  }

  private ensureKernel(nb: vscode.NotebookDocument): KernelProcess {
    const key = nb.uri.toString();
    let k = this.kernels.get(key);
    if (!k) {
      const cwd =
        nb.uri.scheme === 'file' ? path.dirname(nb.uri.fsPath) : (vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? os.tmpdir());
      k = new KernelProcess(this.extensionPath, cwd, path.basename(nb.uri.path), this.output, (e) => {
        if (e.kind === 'model') this.events.onModel(e, nb);
        else this.events.onSaved(e, nb);
      });
      this.kernels.set(key, k);
    }
    return k;
  }

  private run(cells: vscode.NotebookCell[], nb: vscode.NotebookDocument): Promise<void> {
    const key = nb.uri.toString();
    const request = (this.requests.get(key) ?? 0) + 1;
    this.requests.set(key, request);
    // pending until their turn: the executions exist now, so the cells show as queued
    const executions = cells
      .filter((c) => c.kind === vscode.NotebookCellKind.Code)
      .map((cell) => this.controller.createNotebookCellExecution(cell));
    const skip = (from: number) => {
      for (const ex of executions.slice(from)) {
        ex.start();
        ex.end(undefined);
      }
    };
    const go = async () => {
      for (let i = 0; i < executions.length; i++) {
        // as in Jupyter (stop on error), a failing or interrupted cell cancels every cell queued
        // before it failed, in this run request and in the ones waiting behind it
        if (request <= (this.abortedUpTo.get(key) ?? 0)) return skip(i);
        const ok = await this.runOne(executions[i], nb);
        if (!ok) {
          this.abortedUpTo.set(key, this.requests.get(key) ?? request);
          return skip(i + 1);
        }
      }
    };
    const p = (this.queues.get(key) ?? Promise.resolve()).then(go, go);
    this.queues.set(
      key,
      p.catch(() => undefined),
    );
    return p;
  }

  private async runOne(ex: vscode.NotebookCellExecution, nb: vscode.NotebookDocument): Promise<boolean> {
    ex.start(Date.now());
    await ex.clearOutput();
    const run = new CellRun(ex);
    const fail = async (name: string, message: string) => {
      await run.apply({ output_type: 'error', ename: name, evalue: message, traceback: [`${name}: ${message}`] });
      ex.end(false, Date.now());
      return false;
    };
    if (!vscode.workspace.isTrusted) {
      return fail(
        'UntrustedWorkspace',
        'running notebook cells executes code: trust this workspace first (Workspaces: Manage Workspace Trust)',
      );
    }
    this.lastNotebook = nb;
    const kernel = this.ensureKernel(nb);
    // linger.importPythonModel in a cell runs the user's Python: the one Trace PyTorch Model… uses,
    // as it is when the kernel process starts
    if (!kernel.running) {
      const p = await pythonInterpreter(nb.uri);
      kernel.python = p.from === 'the default' ? undefined : p.python;
    }
    const source = ex.cell.document.getText();
    if (!source.trim()) {
      ex.end(true, Date.now());
      return true;
    }
    try {
      const r = await kernel.execute(source, `Cell [${ex.cell.index + 1}]`, (o) => void run.apply(o));
      await run.flush();
      ex.executionOrder = r.executionCount;
      ex.end(r.status === 'ok', Date.now());
      return r.status === 'ok';
    } catch (e) {
      await run.flush();
      if (e instanceof KernelDiedError) {
        return fail(
          'KernelDied',
          `the kernel process ended unexpectedly (${e.why}); every variable was lost, and the next cell starts a fresh kernel`,
        );
      }
      return fail('KernelError', (e as Error).message);
    }
  }

  private async interrupt(nb: vscode.NotebookDocument): Promise<void> {
    await this.kernelOf(nb)?.interrupt();
  }

  /** Restarts the notebook's kernel: every variable is gone, execution counts start again. */
  async restart(nb: vscode.NotebookDocument): Promise<void> {
    const k = this.kernelOf(nb);
    if (k?.running) await k.restart();
  }

  private shutdown(nb: vscode.NotebookDocument): void {
    const key = nb.uri.toString();
    this.kernels.get(key)?.dispose();
    this.kernels.delete(key);
    this.queues.delete(key);
    this.requests.delete(key);
    this.abortedUpTo.delete(key);
  }

  dispose(): void {
    for (const k of this.kernels.values()) k.dispose();
    this.kernels.clear();
    for (const d of this.disposables) d.dispose();
  }
}
