// The chip's rules where the user works (docs/chip-rules.md, "In VS Code"): after a model file is
// traced — or on *Linger: Check Model Against the Chip* — the engine checks the model it builds
// (linger.checkChip, the platform of the setting linger.chipPlatform), and every finding becomes a
// diagnostic at the line that defines its layer (TypeScript and Python model files alike) and a mark
// on the layer's row in the Model view. A checked file is checked again when it is saved.
import * as path from 'node:path';
import * as vscode from 'vscode';
import { CheckChipRequest, PythonSpec } from '../engine/host/protocol';
import type { Finding } from '../engine/chip';
import type { ModelChipReport } from '../engine/services/chipOfModel';
import type { EngineClient } from './engineClient';
import type { ModelTreeView } from './views/modelTree';
import type { GraphView } from './views/graph';
import type { GraphChip } from '../webview/graph/model';
import { escapeMarkdown } from './views/checkpoints';

/** The line of a layer: its own definition, else its nearest parent's (a Sequential's item). */
function lineOf(layer: string, definitions: Record<string, number>): number | undefined {
  for (let p = layer; p; p = p.includes('.') ? p.slice(0, p.lastIndexOf('.')) : '') if (definitions[p] !== undefined) return definitions[p];
  return undefined;
}

/** createModel / create_model, for the findings of the whole model (memory) */
function modelLine(doc: vscode.TextDocument): number {
  const i = doc
    .getText()
    .split('\n')
    .findIndex((l) => /\b(createModel|create_model)\b/.test(l));
  return Math.max(0, i);
}

export class ChipChecks implements vscode.Disposable {
  readonly diagnostics = vscode.languages.createDiagnosticCollection('linger-chip');
  /** the files checked, and how (a Python file's class, shape and interpreter): checked again on save */
  private readonly checked = new Map<string, PythonSpec | undefined>();
  private readonly runs = new Map<string, number>();
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    private readonly engine: EngineClient,
    private readonly models: ModelTreeView,
    private readonly graph: GraphView,
    private readonly output: vscode.OutputChannel,
  ) {
    this.disposables.push(
      vscode.workspace.onDidSaveTextDocument((d) => {
        if (this.checked.has(d.uri.fsPath) && vscode.workspace.isTrusted) void this.check(d.uri.fsPath, this.checked.get(d.uri.fsPath));
      }),
      // a deleted (or renamed) model file takes its findings with it
      ...(() => {
        const w = vscode.workspace.createFileSystemWatcher('**/*.{py,ts,mts,js,mjs}', true, true, false);
        return [
          w,
          w.onDidDelete((u) => {
            this.checked.delete(u.fsPath);
            this.diagnostics.delete(u);
          }),
        ];
      })(),
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('linger.chipPlatform')) for (const [f, py] of this.checked) void this.check(f, py);
      }),
    );
  }

  /** Checks a model file; the report, or undefined when the model could not be built (logged, not shown: the trace said why). */
  async check(modelFile: string, python?: PythonSpec): Promise<ModelChipReport | undefined> {
    const platform = vscode.workspace.getConfiguration('linger').get<string>('chipPlatform', 'venus');
    this.checked.set(modelFile, python);
    // saves in quick succession: only the latest check of a file is shown
    const run = (this.runs.get(modelFile) ?? 0) + 1;
    this.runs.set(modelFile, run);
    let r: ModelChipReport;
    try {
      r = await this.engine.request(CheckChipRequest, { modelFile, python, platform }, `check-chip ${path.basename(modelFile)}`);
    } catch (e) {
      this.output.appendLine(`[chip] ${path.basename(modelFile)}: not checked: ${(e as Error).message}`);
      return undefined;
    }
    if (this.runs.get(modelFile) !== run) return r;
    const uri = vscode.Uri.file(modelFile);
    const doc = await vscode.workspace.openTextDocument(uri);
    const diags = r.report.findings.map((f) => {
      const line = Math.min(lineOf(f.layer, r.definitions) ?? modelLine(doc), doc.lineCount - 1);
      const text = doc.lineAt(line);
      const range = new vscode.Range(line, text.firstNonWhitespaceCharacterIndex, line, text.text.length);
      const d = new vscode.Diagnostic(
        range,
        `${f.layer ? `${f.layer} (${f.op}): ` : ''}${f.message}${f.suggestion ? ` — ${f.suggestion}` : ''}`,
        f.severity === 'error' ? vscode.DiagnosticSeverity.Error : vscode.DiagnosticSeverity.Warning,
      );
      d.source = `linger chip (${r.report.platform})`;
      d.code = f.rule;
      return d;
    });
    this.diagnostics.set(uri, diags);
    this.models.setChip(modelFile, r.report.platform, r.report.findings);
    this.graph.setChip(r.file, graphChip(r));
    const errors = r.report.findings.filter((f) => f.severity === 'error').length;
    this.output.appendLine(
      `[chip] ${path.basename(modelFile)} on ${r.report.platform}: ${errors} error(s), ${r.report.findings.length - errors} warning(s)`,
    );
    return r;
  }

  dispose(): void {
    this.diagnostics.dispose();
    for (const d of this.disposables) d.dispose();
  }
}

/** The graph editor's chip overlay: each layer's memory and findings, the plan against the chip. */
function graphChip(r: ModelChipReport): GraphChip {
  const layers: GraphChip['layers'] = {};
  const m = r.report.memory;
  for (const l of m?.layers ?? [])
    layers[l.layer] = { activationBytes: l.activationBytes, weightBytes: l.weightBytes, workspaceBytes: l.workspaceBytes, findings: [] };
  for (const f of r.report.findings) {
    if (!f.layer) continue;
    (layers[f.layer] ??= { activationBytes: 0, weightBytes: 0, findings: [] }).findings.push({
      severity: f.severity,
      rule: f.rule,
      message: f.message,
      suggestion: f.suggestion,
    });
  }
  return {
    platform: r.report.platform,
    layers,
    sramPeakBytes: m?.sramPeakBytes ?? 0,
    sramBytes: m?.sramBytes ?? 0,
    weightBytes: m?.weightBytes ?? 0,
    psramBytes: m?.psramBytes ?? 0,
  };
}

/** The findings of one layer, for its row's tooltip. */
export function chipTooltip(platform: string, findings: Finding[]): string {
  return findings
    .map(
      (f) =>
        `- **${f.severity === 'error' ? 'chip error' : 'chip warning'}** (${platform}, \`${f.rule}\`): ${escapeMarkdown(f.message)}` +
        `${f.suggestion ? ` — *${escapeMarkdown(f.suggestion)}*` : ''} (tpacker: ${escapeMarkdown(f.source)})`,
    )
    .join('\n');
}

/**
 * *Linger: Check Model Against the Chip*: a model file (the argument, the active editor, or the
 * model file shown in the Model view), its findings in the Problems view and on the Model view's rows.
 */
export function registerChipCommand(
  context: vscode.ExtensionContext,
  chip: ChipChecks,
  models: ModelTreeView,
  pythonSpec: (file: string) => Promise<PythonSpec | undefined>,
): void {
  context.subscriptions.push(
    chip,
    vscode.commands.registerCommand('linger.checkChip', async (arg?: vscode.Uri | { file?: string }) => {
      const active = vscode.window.activeTextEditor?.document;
      const file =
        (arg instanceof vscode.Uri ? arg.fsPath : arg?.file) ??
        (active && /\.(py|ts|mts|js|mjs)$/.test(active.fileName) ? active.fileName : undefined) ??
        models.roots.find((r) => r.file)?.file;
      if (!file) {
        void vscode.window.showInformationMessage(
          'Linger: open a model file (PyTorch .py or TypeScript) or trace one, then check it against the chip.',
        );
        return undefined;
      }
      if (!vscode.workspace.isTrusted) {
        void vscode.window.showWarningMessage(`Linger: checking ${path.basename(file)} runs it; trust the workspace first.`);
        return undefined;
      }
      const python = /\.py$/i.test(file) ? await pythonSpec(file) : undefined;
      if (/\.py$/i.test(file) && !python) return undefined;
      const r = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `Linger: checking ${path.basename(file)} against the chip…` },
        () => chip.check(file, python),
      );
      if (!r) {
        void vscode.window.showErrorMessage(`Linger: ${path.basename(file)} could not be checked (see the Linger output).`);
        return undefined;
      }
      const errors = r.report.findings.filter((f) => f.severity === 'error').length;
      const warnings = r.report.findings.length - errors;
      const text = `Linger: ${path.basename(file)} on ${r.report.platform}: ${
        errors ? `${errors} error${errors === 1 ? '' : 's'} — tpacker would refuse it` : 'tpacker packs every layer'
      }${warnings ? `, ${warnings} warning${warnings === 1 ? '' : 's'}` : ''}.`;
      const show = errors ? vscode.window.showErrorMessage : vscode.window.showInformationMessage;
      void show(text, ...(r.report.findings.length ? ['Show Problems'] : [])).then(
        (c) => c && vscode.commands.executeCommand('workbench.actions.view.problems'),
      );
      return r;
    }),
  );
}
