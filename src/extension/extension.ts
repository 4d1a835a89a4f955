import * as vscode from 'vscode';
import { registerCommands } from './commands';
import { PYTHON_MODEL } from './pythonModel';
import { LoadOrderDiagnostics } from './diagnostics/loadOrder';
import { EngineClient } from './engineClient';
import { CheckpointNode, CheckpointsView } from './views/checkpoints';
import { GRAPH_EDITOR, GraphView } from './views/graph';
import { ReportPanels } from './views/reports';
import { ModelNode, ModelTreeView } from './views/modelTree';
import { LingerNotebookController } from './notebook/controller';
import { registerNotebookCommands } from './notebook/commands';
import { registerNotebookApi } from './notebook/completions';

/** What the extension hands to other extensions and to its tests. */
export interface LingerApi {
  loadOrder: LoadOrderDiagnostics;
  engine: EngineClient;
  checkpoints: CheckpointsView;
  models: ModelTreeView;
  graph: GraphView;
  reports: ReportPanels;
  notebooks: LingerNotebookController;
  views: { model: vscode.TreeView<ModelNode>; checkpoints: vscode.TreeView<CheckpointNode> };
  /** milliseconds activate() took */
  activationMs: number;
  /** the context keys the extension set and their last values (VS Code cannot read them back) */
  contextKeys: Record<string, unknown>;
}

/**
 * The extension's entry point: the Linger views (Model, Checkpoints), their commands, load-order
 * diagnostics, the notebook controller. Everything heavy (TF.js, tracing, checkpoint reads) runs in the engine process,
 * started on first use; activation loads none of it.
 */
export function activate(context: vscode.ExtensionContext): LingerApi {
  const t0 = performance.now();
  const output = vscode.window.createOutputChannel('Linger');
  const loadOrder = new LoadOrderDiagnostics(output);
  loadOrder.activate(context);
  const engine = new EngineClient(context.extensionPath, output);
  const checkpoints = new CheckpointsView(engine, output);
  const models = new ModelTreeView();
  const modelTreeView = vscode.window.createTreeView<ModelNode>('linger.model', { treeDataProvider: models, showCollapseAll: true });
  const checkpointsTreeView = vscode.window.createTreeView<CheckpointNode>('linger.checkpoints', {
    treeDataProvider: checkpoints,
    showCollapseAll: true,
  });
  // a click on a module in the graph selects it in the Model view (the last root that has it)
  const graph = new GraphView(context.extensionUri, (modulePath) => {
    const node = models.find(modulePath);
    if (node) void modelTreeView.reveal(node, { select: true, focus: false, expand: true });
  });
  context.subscriptions.push(
    graph,
    vscode.window.registerWebviewPanelSerializer(GRAPH_EDITOR, graph),
    modelTreeView.onDidChangeSelection((e) => {
      const n = e.selection[0];
      if (n?.kind === 'module') graph.select(n.entry.path);
    }),
  );
  checkpoints.setVisible(checkpointsTreeView.visible);
  context.subscriptions.push(
    output,
    engine,
    checkpoints,
    models,
    modelTreeView,
    checkpointsTreeView,
    checkpointsTreeView.onDidChangeVisibility((e) => checkpoints.setVisible(e.visible)),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration('linger.checkpointsGlob')) {
        checkpoints.watch();
        void checkpoints.refresh();
      }
      if (e.affectsConfiguration('linger.backend')) engine.restart('linger.backend changed');
    }),
  );
  const reports = new ReportPanels(context.extensionUri);
  context.subscriptions.push(reports);
  registerCommands(context, engine, output, checkpoints, models, modelTreeView, graph, reports);
  // notebooks: cells run in a kernel process per notebook; the views follow what they do
  const notebooks = new LingerNotebookController(context.extensionPath, output, {
    onModel: (e, nb) => {
      const roots = models.showKernelModel(e.before, e.after, nb.uri.path.split('/').pop() ?? 'notebook');
      // the next event may replace these roots before the reveal lands: nothing to reveal then
      if (modelTreeView.visible)
        modelTreeView.reveal(roots[1], { expand: true, focus: false, select: false }).then(undefined, () => undefined);
    },
    onSaved: () => {
      void checkpoints.refresh();
    },
  });
  context.subscriptions.push(notebooks);
  registerNotebookCommands(context, notebooks);
  registerNotebookApi(context, (nb) => !!notebooks.kernelOf(nb));
  // "Trace Model File" in the editor title of files that export createModel()
  // (the values set are kept in `contextKeys` too: VS Code has no API to read a context key back, the tests read these)
  const contextKeys: Record<string, unknown> = {};
  const markModelFile = (e: vscode.TextEditor | undefined) => {
    const isModel =
      !!e &&
      /\.(ts|mts|js|mjs)$/.test(e.document.fileName) &&
      /export\s+(async\s+)?(function|const|let)\s+createModel\b/.test(e.document.getText());
    contextKeys['linger.isModelFile'] = isModel;
    void vscode.commands.executeCommand('setContext', 'linger.isModelFile', isModel);
    // "Trace PyTorch Model…" in the editor title of a Python file that defines an nn.Module
    const isPython = !!e && e.document.languageId === 'python' && PYTHON_MODEL.test(e.document.getText());
    contextKeys['linger.isPythonModelFile'] = isPython;
    void vscode.commands.executeCommand('setContext', 'linger.isPythonModelFile', isPython);
  };
  markModelFile(vscode.window.activeTextEditor);
  context.subscriptions.push(
    vscode.window.onDidChangeActiveTextEditor(markModelFile),
    vscode.workspace.onDidSaveTextDocument((d) => {
      if (d === vscode.window.activeTextEditor?.document) markModelFile(vscode.window.activeTextEditor);
    }),
  );
  context.subscriptions.push(
    vscode.commands.registerCommand('linger.checkLoadOrder', async () => {
      const r = await loadOrder.checkWorkspace();
      const text = `Linger: ${r.files} file(s) checked — ${r.errors} error(s), ${r.warnings} warning(s) in the load order`;
      if (r.errors || r.warnings)
        void vscode.window
          .showWarningMessage(text, 'Show Problems')
          .then((c) => c && vscode.commands.executeCommand('workbench.actions.view.problems'));
      else void vscode.window.showInformationMessage(text);
      return r;
    }),
  );
  const activationMs = performance.now() - t0;
  output.appendLine(`[linger] activated in ${activationMs.toFixed(1)} ms`);
  return {
    loadOrder,
    engine,
    checkpoints,
    models,
    graph,
    reports,
    notebooks,
    views: { model: modelTreeView, checkpoints: checkpointsTreeView },
    activationMs,
    contextKeys,
  };
}

export function deactivate(): void {
  /* subscriptions are disposed by VS Code */
}
