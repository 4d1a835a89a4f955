// The Linger commands of the views (docs/contract.md#extension): thin adapters from VS Code arguments (tree items,
// URIs, or `{ file, ... }` objects for tests and keybindings) to engine requests and views.
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { TraceOptions } from '../engine/linger/transforms';
import {
  CheckpointSummary,
  CheckpointSummaryRequest,
  CompareRequest,
  DemoSummary,
  ExperimentRequest,
  ExportOnnxRequest,
  ExportParams,
  ExportResult,
  ImportOnnxRequest,
  Info,
  InspectRequest,
  RunDemoRequest,
  TraceModelFileRequest,
  TraceResult,
} from '../engine/host/protocol';
import { EngineClient } from './engineClient';
import { CheckpointNode, CheckpointsView } from './views/checkpoints';
import { GraphView } from './views/graph';
import { COMPARE_EDITOR, EXPERIMENT_EDITOR, INSPECT_EDITOR, ReportPanels } from './views/reports';
import { compareHtml, experimentHtml, inspectHtml } from './views/reportHtml';
import { ModelNode, ModelRoot, ModelTreeView } from './views/modelTree';
import { newModelFile, registerModelTypes } from './newModelFileCommand';
import { registerPythonModel } from './pythonModel';
import { pairModelFile, pythonSpec, rememberPairing, showPairedTree } from './pairing';
import { ChipChecks, registerChipCommand } from './chip';
import { registerExportPytorch } from './exportPytorch';

// The picker shows linger's own names (linger.trace_layers(..., fuse_bn=, ahead_conv_relu=, ...)), what a linger
// user types; the description is our camelCase TraceOptions key (docs/contract.md, "Trace").
const TRACE_OPTIONS: { key: keyof TraceOptions; label: string; description: string; detail: string; off?: true }[] = [
  {
    key: 'fuseBn',
    label: 'fuse_bn',
    description: 'fuseBn',
    detail: 'fuse Conv + BatchNorm into NormalizeConvBN (fused forward, unfused backward)',
  },
  {
    key: 'aheadConvRelu',
    label: 'ahead_conv_relu',
    description: 'aheadConvRelu',
    detail: 'mark a conv followed by ReLU (its output scale covers the positive range only)',
  },
  { key: 'aheadBnRelu', label: 'ahead_bn_relu', description: 'aheadBnRelu', detail: 'mark a BatchNorm followed by ReLU' },
  {
    key: 'aheadLinearRelu',
    label: 'ahead_linear_relu',
    description: 'aheadLinearRelu',
    detail: 'mark a Linear followed by ReLU (off by default: real linger never marks a Linear)',
    off: true,
  },
];

/** A file argument from a tree item, a URI, `{ file }`, or the active editor. */
function fileOf(arg: unknown): string | undefined {
  if (arg instanceof vscode.Uri) return arg.fsPath;
  const a = arg as { file?: string; uri?: vscode.Uri; kind?: string } | undefined;
  if (a?.file) return a.file;
  if (a?.uri instanceof vscode.Uri) return a.uri.fsPath;
  return undefined;
}

/** Only a trusted workspace may run its code (model files execute createModel()). */
function requireTrust(what: string): boolean {
  if (vscode.workspace.isTrusted) return true;
  void vscode.window
    .showWarningMessage(`Linger: ${what} runs code from this workspace; trust the workspace first.`, 'Manage Workspace Trust')
    .then((c) => c && vscode.commands.executeCommand('workbench.trust.manage'));
  return false;
}

/** linger.trace_layers' options from a multi-select pick (linger's names); undefined when dismissed. */
async function pickTraceOptions(file: string): Promise<TraceOptions | undefined> {
  const picks = await vscode.window.showQuickPick(
    TRACE_OPTIONS.map(({ off, ...o }) => ({ ...o, picked: !off })),
    {
      canPickMany: true,
      title: `Linger: trace ${path.basename(file)}`,
      placeHolder: "linger.trace_layers options (traceLayers in TypeScript; all on is linger's default)",
    },
  );
  if (!picks) return undefined;
  return Object.fromEntries(TRACE_OPTIONS.map((o) => [o.key, picks.some((p) => p.key === o.key)])) as TraceOptions;
}

export function registerCommands(
  context: vscode.ExtensionContext,
  engine: EngineClient,
  output: vscode.OutputChannel,
  checkpoints: CheckpointsView,
  models: ModelTreeView,
  modelTreeView: vscode.TreeView<ModelNode>,
  graph: GraphView,
  reports: ReportPanels,
): void {
  const reg = (id: string, fn: (...args: any[]) => unknown) => context.subscriptions.push(vscode.commands.registerCommand(id, fn)); // eslint-disable-line @typescript-eslint/no-explicit-any

  reg('linger.showEngineLog', () => output.show(true));

  reg('linger.newModelFile', (arg?: { folder?: vscode.Uri; name?: string }) => newModelFile(context, arg));
  registerModelTypes(context);
  const chip = new ChipChecks(engine, models, graph, output);
  registerChipCommand(context, chip, models, (file) => pythonSpec(context, file));
  registerExportPytorch(context, engine, output);
  registerPythonModel(context, engine, models, modelTreeView as vscode.TreeView<unknown>, graph, output, pickTraceOptions, chip);

  reg('linger.showBackend', async () => {
    const info = await engine.request(Info, undefined, 'backend');
    const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
    void vscode.window.showInformationMessage(
      `Linger engine (process ${info.pid}): backend ${info.backend}; ${info.memory.tensors} tensors, ` +
        `${mib(info.memory.bytes)}${info.memory.wasmHeapBytes ? `, wasm heap ${mib(info.memory.wasmHeapBytes)}` : ''}`,
    );
    return info.backend;
  });

  reg('linger.traceModelFile', async (arg?: unknown) => {
    let file = fileOf(arg) ?? (arg === undefined ? vscode.window.activeTextEditor?.document.uri.fsPath : undefined);
    if (!file || !/\.(ts|mts|cts|js|mjs|cjs)$/.test(file)) {
      const picked = await vscode.window.showOpenDialog({
        canSelectMany: false,
        openLabel: 'Trace',
        title: 'Linger: a model file (exports createModel(), and inputShape or exampleInput())',
        filters: { 'Model files': ['ts', 'mts', 'js', 'mjs', 'cjs'] },
      });
      file = picked?.[0]?.fsPath;
    }
    if (!file) return undefined;
    if (!requireTrust('tracing a model file')) return undefined;
    const traceOptions = (arg as { traceOptions?: TraceOptions } | undefined)?.traceOptions ?? (await pickTraceOptions(file));
    if (!traceOptions) return undefined;
    const f = file;
    const opts = traceOptions;
    try {
      const r = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `Linger: tracing ${path.basename(f)}…`, cancellable: true },
        (_, token) => engine.cancellable(TraceModelFileRequest, { file: f, traceOptions: opts }, `trace ${path.basename(f)}`, token),
      );
      const roots = models.showTrace(r);
      void chip.check(r.file); // the chip's rules on it, as diagnostics, on the rows and in the graph (chip.ts)
      await vscode.commands.executeCommand('linger.model.focus');
      await modelTreeView.reveal(roots[1], { expand: true, select: false, focus: false });
      if (r.graph)
        void graph.show(
          { title: `${path.basename(f)} — after traceLayers`, graph: r.graph, modules: r.after.modules, file: r.file },
          { preserveFocus: true },
        );
      return r;
    } catch (e) {
      void vscode.window
        .showErrorMessage(`Linger: cannot trace ${path.basename(f)}: ${(e as Error).message}`, 'Show Log')
        .then((c) => c && output.show(true));
      return undefined;
    }
  });

  reg('linger.importOnnx', async (arg?: unknown) => {
    let file = fileOf(arg);
    if (!file) {
      const picked = await vscode.window.showOpenDialog({
        canSelectMany: false,
        openLabel: 'Import',
        title: 'Linger: an ONNX model exported from PyTorch',
        filters: { ONNX: ['onnx'] },
      });
      file = picked?.[0]?.fsPath;
    }
    if (!file) return undefined;
    let trace = (arg as { trace?: boolean } | undefined)?.trace;
    if (trace === undefined) {
      const pick = await vscode.window.showQuickPick(
        [
          {
            label: 'Import and trace',
            detail: "show the module tree before and after traceLayers (linger's defaults), and the graph",
            trace: true,
          },
          { label: 'Import only', detail: 'show the imported module tree', trace: false },
        ],
        { title: `Linger: import ${path.basename(file)}` },
      );
      if (!pick) return undefined;
      trace = pick.trace;
    }
    const f = file;
    try {
      const r = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `Linger: importing ${path.basename(f)}…` },
        () =>
          engine.request(
            ImportOnnxRequest,
            { file: f, trace, traceOptions: (arg as { traceOptions?: TraceOptions } | undefined)?.traceOptions },
            `import ${path.basename(f)}`,
          ),
      );
      if (r.after) {
        models.showTrace({
          file: r.file,
          inputShape: r.inputShape,
          before: r.before,
          after: r.after,
          definitions: {},
          graph: r.graph,
          ms: r.ms,
        });
        if (r.graph)
          void graph.show(
            { title: `${path.basename(f)} — after traceLayers`, graph: r.graph, modules: r.after.modules },
            { preserveFocus: true },
          );
      } else models.showTree(r.before);
      await vscode.commands.executeCommand('linger.model.focus');
      return r;
    } catch (e) {
      void vscode.window.showErrorMessage(`Linger: cannot import ${path.basename(f)}: ${(e as Error).message}`);
      return undefined;
    }
  });

  reg('linger.showModelTreeOfCheckpoint', async (arg?: unknown) => {
    const file = fileOf(arg);
    if (!file) return undefined;
    let s: CheckpointSummary;
    try {
      s = await engine.request(CheckpointSummaryRequest, { file }, `read ${path.basename(file)}`);
    } catch (e) {
      void vscode.window.showErrorMessage(`Linger: ${path.basename(file)} is not a readable checkpoint: ${(e as Error).message}`);
      return undefined;
    }
    if (!s.moduleTree) return showPairedTree({ context, engine, models, output }, file, s, arg as { modelFile?: string } | undefined);
    const roots = models.showTree({ label: path.basename(file), stage: s.stage, modules: s.moduleTree }, s.graph);
    await vscode.commands.executeCommand('linger.model.focus');
    return roots[0];
  });

  reg('linger.inspectCheckpoint', async (arg?: unknown) => {
    const file = fileOf(arg);
    if (!file) return undefined;
    try {
      const r = await engine.request(InspectRequest, { file }, `inspect ${path.basename(file)}`);
      reports.show(INSPECT_EDITOR, file, `Inspect: ${path.basename(file)}`, inspectHtml(r.result));
      return r.text;
    } catch (e) {
      void vscode.window.showErrorMessage(`Linger: ${path.basename(file)} cannot be inspected: ${(e as Error).message}`);
      return undefined;
    }
  });

  reg('linger.refreshCheckpoints', () => checkpoints.refresh());
  reg('linger.revealCheckpoint', (arg?: CheckpointNode) => {
    const file = fileOf(arg);
    if (file) void vscode.commands.executeCommand('revealInExplorer', vscode.Uri.file(file));
  });
  reg('linger.copyCheckpointPath', async (arg?: CheckpointNode) => {
    const file = fileOf(arg);
    if (file) await vscode.env.clipboard.writeText(file);
    return file;
  });
  reg('linger.deleteCheckpoint', async (arg?: CheckpointNode & { confirmed?: boolean }) => {
    const file = fileOf(arg);
    if (!file) return false;
    if (!arg?.confirmed) {
      const yes = await vscode.window.showWarningMessage(
        `Delete the checkpoint ${path.basename(file)}?`,
        { modal: true, detail: `${file}\nIt goes to the trash where the system has one.` },
        'Delete',
      );
      if (yes !== 'Delete') return false;
    }
    try {
      await vscode.workspace.fs.delete(vscode.Uri.file(file), { useTrash: true });
    } catch {
      await vscode.workspace.fs.delete(vscode.Uri.file(file), { useTrash: false }); // no trash on this system
    }
    await checkpoints.refresh();
    return true;
  });

  /** Exports, verifies, reports; returns the result (tests) or undefined (cancelled, failed). */
  const exportOnnx = async (params: ExportParams, label: string): Promise<ExportResult | undefined> => {
    try {
      const r = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `Linger: exporting ${label} to ONNX and checking it…` },
        () => engine.request(ExportOnnxRequest, params, `export ${label}`),
      );
      const text = `Linger: exported ${path.basename(r.file)} (${r.stage}, ${(r.bytes / 1024).toFixed(0)} KB). ${r.verification.summary}`;
      const show = r.verification.ok ? vscode.window.showInformationMessage : vscode.window.showWarningMessage;
      void show(text, 'Reveal in Explorer').then((c) => c && vscode.commands.executeCommand('revealInExplorer', vscode.Uri.file(r.file)));
      for (const n of r.notes) output.appendLine(`[export] note: ${n}`);
      return r;
    } catch (e) {
      void vscode.window
        .showErrorMessage(`Linger: cannot export ${label}: ${(e as Error).message}`, 'Show Log')
        .then((c) => c && output.show(true));
      return undefined;
    }
  };

  reg('linger.exportCheckpointOnnx', async (arg?: unknown) => {
    const checkpoint = fileOf(arg);
    if (!checkpoint) return undefined;
    const given = arg as { dialect?: 'qdq' | 'thinker'; modelFile?: string } | undefined;
    let summary: CheckpointSummary;
    try {
      summary = await engine.request(CheckpointSummaryRequest, { file: checkpoint }, `read ${path.basename(checkpoint)}`);
    } catch (e) {
      void vscode.window.showErrorMessage(`Linger: cannot export ${path.basename(checkpoint)}: ${(e as Error).message}`);
      return undefined;
    }
    let dialect = given?.dialect;
    if (!dialect) {
      if (summary.stage === 'fixed') {
        const pick = await vscode.window.showQuickPick(
          [
            {
              label: 'qdq',
              detail: 'standard ONNX (QuantizeLinear/DequantizeLinear, integer ops): runs anywhere, checked bit for bit in onnxruntime',
              dialect: 'qdq' as const,
            },
            {
              label: 'thinker',
              detail: "linger's custom ops (Quant, Conv2dInt, LinearInt, …) for the thinker toolchain: structure checked",
              dialect: 'thinker' as const,
            },
          ],
          { title: `Linger: export ${path.basename(checkpoint)} (fixed point) as` },
        );
        if (!pick) return undefined;
        dialect = pick.dialect;
      } else dialect = 'qdq'; // float and traced stages export standard ops either way
    }
    // the model file that builds the model: asked once per folder and remembered; none for built-in models
    const paired = await pairModelFile(context, checkpoint, summary.model, given?.modelFile);
    if (!paired) return undefined;
    const r = await exportOnnx({ checkpoint, ...paired, dialect }, path.basename(checkpoint));
    if (r && paired.modelFile) await rememberPairing(context, checkpoint, paired.modelFile);
    return r;
  });

  reg('linger.exportModelFileOnnx', async (arg?: unknown) => {
    const modelFile = fileOf(arg) ?? vscode.window.activeTextEditor?.document.uri.fsPath;
    if (!modelFile || !/\.(ts|mts|cts|js|mjs|cjs|py)$/.test(modelFile)) {
      void vscode.window.showInformationMessage(
        'Linger: open a model file to export it: a PyTorch .py defining an nn.Module, or a TypeScript/JavaScript one exporting createModel() and inputShape or exampleInput().',
      );
      return undefined;
    }
    if (!requireTrust('exporting a model file')) return undefined;
    const python = /\.py$/.test(modelFile) ? await pythonSpec(context, modelFile) : undefined;
    if (/\.py$/.test(modelFile) && !python) return undefined;
    return exportOnnx({ modelFile, python, dialect: 'qdq' }, path.basename(modelFile));
  });

  reg('linger.compareCheckpoints', async (arg?: unknown) => {
    const a = fileOf(arg);
    if (!a) return undefined;
    let b = (arg as { with?: string } | undefined)?.with;
    if (!b) {
      const others = (await checkpoints.items()).filter(
        (n): n is Extract<CheckpointNode, { kind: 'checkpoint' }> => n.kind === 'checkpoint' && n.uri.fsPath !== a,
      );
      const pick = await vscode.window.showQuickPick(
        others.map((n) => ({
          label: path.basename(n.uri.fsPath),
          description: `${n.summary.stage} · ${vscode.workspace.asRelativePath(path.dirname(n.uri.fsPath))}`,
          file: n.uri.fsPath,
        })),
        { title: `Linger: compare ${path.basename(a)} with…`, matchOnDescription: true },
      );
      b = pick?.file;
    }
    if (!b) return undefined;
    try {
      const r = await engine.request(CompareRequest, { a, b }, `compare ${path.basename(a)} ${path.basename(b)}`);
      reports.show(COMPARE_EDITOR, `${a}\n${b}`, `Compare: ${path.basename(a)} ↔ ${path.basename(b)}`, compareHtml(r));
      return r;
    } catch (e) {
      void vscode.window.showErrorMessage(`Linger: cannot compare: ${(e as Error).message}`);
      return undefined;
    }
  });

  // The experiment view: one folder's checkpoints (or every folder's, overlaid) as runs, charts,
  // lineage and notes (docs/experiments.md). An open one follows the Checkpoints view's changes.
  const ALL = '*';
  const openExperiments = new Set<string>();
  const filesOf = async (dir: string) =>
    (await checkpoints.items())
      .flatMap((n) => (n.kind === 'checkpoint' || n.kind === 'error' ? [n.uri.fsPath] : []))
      .filter((f) => dir === ALL || path.dirname(f) === dir)
      .sort();
  const showExperiment = async (dir: string, reveal: boolean) => {
    const files = await filesOf(dir);
    const title = dir === ALL ? 'all experiments' : path.basename(dir);
    const r = await engine.request(ExperimentRequest, { files, ...(dir === ALL ? { title } : {}) }, `experiment ${title}`);
    if (!reveal && !reports.isOpen(`experiment:${dir}`)) return r;
    const panel = reports.show(EXPERIMENT_EDITOR, `experiment:${dir}`, `Experiment: ${title}`, experimentHtml(r.report, r.svgs));
    if (!openExperiments.has(dir)) {
      openExperiments.add(dir);
      panel.onDidDispose(() => openExperiments.delete(dir));
    }
    return r;
  };
  context.subscriptions.push(
    checkpoints.onDidChangeTreeData(() => {
      for (const dir of openExperiments) void showExperiment(dir, false).catch(() => undefined);
    }),
  );
  reg('linger.showExperiment', async (arg?: unknown) => {
    let dir = typeof arg === 'string' ? arg : (arg as { kind?: string; dir?: string } | undefined)?.dir;
    if (!dir) {
      const dirs = [...new Set((await filesOf(ALL)).map((f) => path.dirname(f)))];
      if (!dirs.length) {
        void vscode.window.showInformationMessage(
          'Linger: no checkpoints in this workspace yet (linger.checkpointsGlob). Run the demo to make an experiment.',
        );
        return undefined;
      }
      const pick = await vscode.window.showQuickPick(
        [
          ...dirs.map((d) => ({ label: path.basename(d), description: vscode.workspace.asRelativePath(d), dir: d })),
          ...(dirs.length > 1 ? [{ label: 'All experiments', description: 'every folder, overlaid', dir: ALL }] : []),
        ],
        { title: 'Linger: show experiment' },
      );
      dir = pick?.dir;
    }
    if (!dir) return undefined;
    try {
      return (await showExperiment(dir, true)).report;
    } catch (e) {
      void vscode.window.showErrorMessage(`Linger: cannot show the experiment: ${(e as Error).message}`);
      return undefined;
    }
  });
  reg('linger.showAllExperiments', async () => {
    try {
      return (await showExperiment(ALL, true)).report;
    } catch (e) {
      void vscode.window.showErrorMessage(`Linger: cannot show the experiments: ${(e as Error).message}`);
      return undefined;
    }
  });

  reg('linger.runDemo', async (arg?: { epochs?: [number, number, number]; limit?: number; experiment?: string }) => {
    const folder = vscode.workspace.workspaceFolders?.[0];
    if (!folder) {
      void vscode.window.showInformationMessage('Linger: open a folder first; the demo saves its checkpoints in it.');
      return undefined;
    }
    let schedule = arg?.epochs ? { epochs: arg.epochs, limit: arg.limit } : undefined;
    if (!schedule) {
      const pick = await vscode.window.showQuickPick(
        [
          {
            label: 'Quick look',
            detail: '1 float epoch, no float-stage fine-tuning, 1 QAT epoch, on 600 images per class (about a minute)',
            epochs: [1, 0, 1] as [number, number, number],
            limit: 600,
          },
          {
            label: 'Full demo',
            detail: "linger demo's schedule: 2 float epochs, 1 float-stage epoch, 1 QAT epoch on all of Fashion-MNIST (about 6 minutes)",
            epochs: [2, 1, 1] as [number, number, number],
            limit: undefined,
          },
        ],
        { title: 'Linger: run the two-stage demo (DemoCNN on Fashion-MNIST)' },
      );
      if (!pick) return undefined;
      schedule = pick;
    }
    const checkpointDir = path.join(folder.uri.fsPath, 'checkpoints');
    const experiment = arg?.experiment ?? 'demo';
    const { epochs, limit } = schedule;
    try {
      const r = await vscode.window.withProgress<DemoSummary>(
        { location: vscode.ProgressLocation.Notification, title: 'Linger demo', cancellable: true },
        (progress, token) => {
          const sub = engine.onProgress((p) =>
            progress.report({ message: `${p.phase}: ${p.step}/${p.steps}${p.detail ? ` · ${p.detail}` : ''}` }),
          );
          return engine
            .cancellable(RunDemoRequest, { checkpointDir, experiment, epochs, limit }, 'two-stage demo', token)
            .finally(() => sub.dispose());
        },
      );
      const pct = (a: number | null) => (a === null ? '-' : `${(a * 100).toFixed(2)}%`);
      void vscode.window
        .showInformationMessage(
          `Linger demo: float ${pct(r.floatAccuracy)} → fixed point ${pct(r.fixedAccuracy)} ` +
            `(${r.seconds.toFixed(0)} s); checkpoints in ${vscode.workspace.asRelativePath(path.join(checkpointDir, experiment))}`,
          'Show Checkpoints',
        )
        .then((c) => c && vscode.commands.executeCommand('linger.checkpoints.focus'));
      void checkpoints.refresh();
      return r;
    } catch (e) {
      const message = (e as Error).message;
      if (/cancelled/.test(message)) void vscode.window.showInformationMessage(`Linger: ${message}`);
      else void vscode.window.showErrorMessage(`Linger demo failed: ${message}`, 'Show Log').then((c) => c && output.show(true));
      void checkpoints.refresh();
      return undefined;
    }
  });

  reg('linger.cancelJob', () => {
    const job = engine.job;
    job?.cancel();
    return job?.what;
  });
  reg('linger.engineStatus', async () => {
    const items: (vscode.QuickPickItem & { run: () => unknown })[] = [
      ...(engine.job ? [{ label: `$(debug-stop) Cancel ${engine.job.what}`, run: () => engine.job?.cancel() }] : []),
      { label: '$(output) Show Engine Log', run: () => output.show(true) },
      { label: '$(info) Show Backend and Memory', run: () => vscode.commands.executeCommand('linger.showBackend') },
      {
        label: '$(debug-restart) Restart Engine Process',
        detail: 'ends running jobs; the next command starts a new process',
        run: () => engine.restart('restarted by the user'),
      },
    ];
    const pick = await vscode.window.showQuickPick(items, { title: 'Linger engine' });
    await pick?.run();
  });

  reg('linger.showGraph', async (arg?: unknown) => {
    // a Model view root, a checkpoint (item or { file }), or the last traced model
    let root = (arg as ModelRoot | undefined)?.kind === 'root' ? (arg as ModelRoot) : undefined;
    const file = root ? undefined : fileOf(arg);
    if (file) root = await vscode.commands.executeCommand<ModelRoot | undefined>('linger.showModelTreeOfCheckpoint', { file });
    root ??= [...models.roots].reverse().find((r) => r.graph);
    if (!root?.graph) {
      void vscode.window.showInformationMessage(
        'Linger: no traced graph to show. Trace a model file, or choose a traced or fixed checkpoint.',
      );
      return undefined;
    }
    return graph.show({
      title: !root.file
        ? root.tree.label
        : root.tree.label === path.basename(root.file)
          ? vscode.workspace.asRelativePath(root.file)
          : `${vscode.workspace.asRelativePath(root.file)} — ${root.tree.label}`,
      graph: root.graph,
      modules: root.tree.modules,
    });
  });
  reg('linger.saveGraphSvg', async (arg?: { file?: string }) => {
    const svg = await graph.svg();
    if (!svg) {
      void vscode.window.showInformationMessage('Linger: the graph editor shows no graph to save.');
      return undefined;
    }
    let target = arg?.file ? vscode.Uri.file(arg.file) : undefined;
    target ??= await vscode.window.showSaveDialog({
      filters: { SVG: ['svg'] },
      title: 'Linger: save the graph as SVG',
      defaultUri: vscode.workspace.workspaceFolders?.[0] && vscode.Uri.joinPath(vscode.workspace.workspaceFolders[0].uri, 'graph.svg'),
    });
    if (!target) return undefined;
    await vscode.workspace.fs.writeFile(target, Buffer.from(svg, 'utf8'));
    return target.fsPath;
  });

  reg('linger.copyModelText', async (root?: ModelRoot) => {
    const r = root ?? models.roots[models.roots.length - 1];
    if (!r?.tree.text) return undefined;
    await vscode.env.clipboard.writeText(r.tree.text);
    void vscode.window.setStatusBarMessage(`Linger: copied the ${r.tree.label} printout`, 3000);
    return r.tree.text;
  });
  reg('linger.revealModule', async (node?: ModelNode) => {
    if (!node || node.kind !== 'module' || !node.root.file) return;
    const line = node.root.definitions?.[node.entry.path];
    if (line === undefined) return;
    const doc = await vscode.workspace.openTextDocument(node.root.file);
    const range = doc.lineAt(line).range;
    await vscode.window.showTextDocument(doc, { selection: range, preserveFocus: false });
  });
}

export type { TraceResult };
