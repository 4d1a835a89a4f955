// Load-order diagnostics (docs/contract.md#load-order-diagnostics): the engine's analyzer, shown as VS Code diagnostics with the
// "move the load after the last transform" quick fix, for Python/TS/JS files and notebook cells.
// A file the analyzer could not analyse shows its LINGER000 "could not analyse: <reason>" on the
// first line (docs/analysis.md), so an empty Problems view always means "checked, nothing found".
import * as vscode from 'vscode';
import {
  CellQuickFix,
  languageForId,
  LoadOrderAnalyzer,
  LoadOrderDiagnostic,
  NotebookDiagnostic,
  QuickFix,
  Range,
} from '../../engine/analysis';

const SOURCE = 'linger';
const LANGUAGES = new Set(['python', 'typescript', 'typescriptreact', 'javascript', 'javascriptreact']);
const DEBOUNCE_MS = 300;

/** A VS Code diagnostic that remembers the analyzer's fix for the code-action provider. */
class LingerDiagnostic extends vscode.Diagnostic {
  fix?: vscode.WorkspaceEdit;
  fixTitle?: string;
}

const toRange = (r: Range) => new vscode.Range(r.start.line, r.start.col, r.end.line, r.end.col);

function toDiagnostic(d: LoadOrderDiagnostic | NotebookDiagnostic, fix?: vscode.WorkspaceEdit, title?: string): LingerDiagnostic {
  const v = new LingerDiagnostic(
    toRange(d.range),
    d.message,
    d.severity === 'error' ? vscode.DiagnosticSeverity.Error : vscode.DiagnosticSeverity.Warning,
  );
  v.source = SOURCE;
  v.code = d.code;
  v.fix = fix;
  v.fixTitle = title;
  return v;
}

function editOf(uri: vscode.Uri, fix: QuickFix): vscode.WorkspaceEdit {
  const e = new vscode.WorkspaceEdit();
  for (const t of fix.edits) e.replace(uri, toRange(t.range), t.newText);
  return e;
}
function cellEditOf(cells: readonly vscode.NotebookCell[], fix: CellQuickFix): vscode.WorkspaceEdit {
  const e = new vscode.WorkspaceEdit();
  for (const t of fix.edits) e.replace(cells[t.cell].document.uri, toRange(t.range), t.newText);
  return e;
}

export class LoadOrderDiagnostics implements vscode.CodeActionProvider, vscode.Disposable {
  static readonly providedCodeActionKinds = [vscode.CodeActionKind.QuickFix];
  private readonly collection = vscode.languages.createDiagnosticCollection(SOURCE);
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private analyzer: Promise<LoadOrderAnalyzer> | undefined;
  private readonly output: vscode.OutputChannel;

  constructor(output: vscode.OutputChannel) {
    this.output = output;
  }

  private getAnalyzer(): Promise<LoadOrderAnalyzer> {
    this.analyzer ??= LoadOrderAnalyzer.create();
    return this.analyzer;
  }

  /** Subscribes to document and notebook events; analyzes what is already open. */
  activate(context: vscode.ExtensionContext): void {
    context.subscriptions.push(
      this,
      vscode.workspace.onDidOpenTextDocument((d) => this.schedule(d, 0)),
      vscode.workspace.onDidChangeTextDocument((e) => this.schedule(e.document, DEBOUNCE_MS)),
      vscode.workspace.onDidCloseTextDocument((d) => {
        if (d.uri.scheme !== 'vscode-notebook-cell') this.collection.delete(d.uri);
      }),
      vscode.workspace.onDidOpenNotebookDocument((n) => this.scheduleNotebook(n, 0)),
      vscode.workspace.onDidChangeNotebookDocument((e) => this.scheduleNotebook(e.notebook, DEBOUNCE_MS)),
      vscode.workspace.onDidCloseNotebookDocument((n) => n.getCells().forEach((c) => this.collection.delete(c.document.uri))),
      vscode.languages.registerCodeActionsProvider(
        [...LANGUAGES].map((language) => ({ language })),
        this,
        { providedCodeActionKinds: LoadOrderDiagnostics.providedCodeActionKinds },
      ),
    );
    for (const d of vscode.workspace.textDocuments) this.schedule(d, 0);
    for (const n of vscode.workspace.notebookDocuments) this.scheduleNotebook(n, 0);
  }

  private debounce(key: string, ms: number, run: () => Promise<unknown>): void {
    clearTimeout(this.timers.get(key));
    this.timers.set(
      key,
      setTimeout(() => {
        this.timers.delete(key);
        run().catch((e: unknown) => this.output.appendLine(`load-order analysis failed: ${String(e)}`));
      }, ms),
    );
  }

  private schedule(doc: vscode.TextDocument, ms: number): void {
    if (doc.uri.scheme === 'vscode-notebook-cell') {
      const nb = vscode.workspace.notebookDocuments.find((n) => n.getCells().some((c) => c.document === doc));
      if (nb) this.scheduleNotebook(nb, ms);
      return;
    }
    if (!LANGUAGES.has(doc.languageId)) return;
    this.debounce(doc.uri.toString(), ms, () => this.analyzeDocument(doc));
  }

  private scheduleNotebook(nb: vscode.NotebookDocument, ms: number): void {
    this.debounce(nb.uri.toString(), ms, () => this.analyzeNotebook(nb));
  }

  /** Diagnostics for one document (also used by the workspace check). */
  async analyzeDocument(doc: vscode.TextDocument): Promise<readonly vscode.Diagnostic[]> {
    const language = languageForId(doc.languageId);
    if (!language) return [];
    const a = await this.getAnalyzer();
    if (doc.isClosed && vscode.workspace.textDocuments.every((d) => d !== doc)) return [];
    const found = a.analyze(doc.getText(), language).map((d) => toDiagnostic(d, d.fix && editOf(doc.uri, d.fix), d.fix?.title));
    this.collection.set(doc.uri, found);
    return found;
  }

  /** Diagnostics for a notebook's code cells, analyzed together in order (cells run top to bottom). */
  async analyzeNotebook(nb: vscode.NotebookDocument): Promise<number> {
    const a = await this.getAnalyzer();
    const cells = nb.getCells();
    const found = a.analyzeCells(
      cells.map((c) => ({
        text: c.kind === vscode.NotebookCellKind.Code ? c.document.getText() : '',
        language: c.kind === vscode.NotebookCellKind.Code ? c.document.languageId : 'markdown',
      })),
    );
    for (const c of cells) this.collection.delete(c.document.uri);
    const byCell = new Map<number, LingerDiagnostic[]>();
    for (const d of found) {
      if (cells.length === 0) break;
      // -1 is the notebook as a whole: shown on its first cell
      if (d.cell < 0 || d.cell >= cells.length) d.cell = 0;
      const list = byCell.get(d.cell) ?? [];
      list.push(toDiagnostic(d, d.fix && cellEditOf(cells, d.fix), d.fix?.title));
      byCell.set(d.cell, list);
    }
    for (const [i, list] of byCell) this.collection.set(cells[i].document.uri, list);
    return found.length;
  }

  provideCodeActions(doc: vscode.TextDocument, _range: vscode.Range, ctx: vscode.CodeActionContext): vscode.CodeAction[] {
    return ctx.diagnostics
      .filter((d): d is LingerDiagnostic => d instanceof LingerDiagnostic && d.source === SOURCE && !!d.fix)
      .map((d) => {
        const action = new vscode.CodeAction(d.fixTitle ?? 'Move the load after the last transform', vscode.CodeActionKind.QuickFix);
        action.edit = d.fix;
        action.diagnostics = [d];
        action.isPreferred = true;
        return action;
      });
  }

  /** "Linger: Check Load Order in Workspace": analyzes every script and notebook, returns the counts. */
  async checkWorkspace(): Promise<{ files: number; errors: number; warnings: number }> {
    const uris = await vscode.workspace.findFiles('**/*.{py,ts,tsx,js,ipynb}', '**/{node_modules,.git,dist,out}/**');
    let errors = 0,
      warnings = 0;
    const count = (ds: readonly vscode.Diagnostic[]) =>
      ds.forEach((d) => (d.severity === vscode.DiagnosticSeverity.Error ? errors++ : warnings++));
    await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: 'Linger: checking load order', cancellable: true },
      async (progress, token) => {
        for (const uri of uris) {
          if (token.isCancellationRequested) break;
          progress.report({ message: vscode.workspace.asRelativePath(uri), increment: 100 / Math.max(1, uris.length) });
          if (uri.path.endsWith('.ipynb')) {
            const nb = await vscode.workspace.openNotebookDocument(uri);
            await this.analyzeNotebook(nb);
            nb.getCells().forEach((c) => count(this.collection.get(c.document.uri) ?? []));
          } else {
            count(await this.analyzeDocument(await vscode.workspace.openTextDocument(uri)));
          }
        }
      },
    );
    return { files: uris.length, errors, warnings };
  }

  dispose(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.collection.dispose();
  }
}
