// The Model view: module trees (name, type, key settings as PyTorch prints them, parameter count,
// linger's flags), from a traced model file (two roots, before and after traceLayers, with the
// replaced modules marked) or from a checkpoint's stored tree (one root, its stage).
import * as vscode from 'vscode';
import type { ModelTree, TraceResult } from '../../engine/host/protocol';
import type { ModuleTreeEntry } from '../../engine/state/checkpoint';
import type { Graph } from '../../engine/trace/graph';
import { escapeMarkdown } from './checkpoints';
import type { Finding } from '../../engine/chip';
import { chipTooltip } from '../chip';

export interface ModelRoot {
  kind: 'root';
  tree: ModelTree;
  /** the model file, for "Reveal in editor" */
  file?: string;
  definitions?: Record<string, number>;
  /** the tree this one came from (before traceLayers): modules whose type changed are marked */
  previous?: ModelTree;
  /** the dataflow graph traceLayers recorded (Show Graph) */
  graph?: Graph;
  /** the notebook whose kernel holds this model (a live model) */
  kernel?: string;
  /** which show put it in the view (part of its tree item's id) */
  shown?: number;
}
export interface ModuleNode {
  kind: 'module';
  root: ModelRoot;
  entry: ModuleTreeEntry;
  replaced?: string;
}
export type ModelNode = ModelRoot | ModuleNode;

/** A module's icon by what it is. */
function iconOf(type: string): string {
  if (/Conv/.test(type)) return 'symbol-array';
  if (/BatchNorm/.test(type)) return 'symbol-operator';
  if (/Linear/.test(type)) return 'symbol-method';
  if (/ReLU|Sigmoid|Tanh|Softmax/.test(type)) return 'symbol-event';
  if (/Pool/.test(type)) return 'symbol-struct';
  if (/IQ|Add|Cat/.test(type)) return 'symbol-operator';
  return 'symbol-class';
}

function lastName(p: string): string {
  return p.slice(p.lastIndexOf('.') + 1);
}

function flags(e: ModuleTreeEntry): string[] {
  const out: string[] = [];
  if (e.aheadRelu) out.push('ahead ReLU');
  if (e.normalize) {
    const n = e.normalize;
    const set = [
      ['data', n.data],
      ['weight', n.weight],
      ['bias', n.bias],
    ]
      .filter(([, v]) => v !== null)
      .map(([k, v]) => `${k} ±${v}`);
    if (set.length) out.push(`normalize ${set.join(', ')}`);
  }
  if (e.bits) out.push(`int${e.bits.data}/${e.bits.parameter}/${e.bits.out}`);
  return out;
}

export class ModelTreeView implements vscode.TreeDataProvider<ModelNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<ModelNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  roots: ModelRoot[] = [];
  // ids are unique per show: a notebook's events can replace the roots while VS Code still renders
  // the last ones, and an id seen twice across them is an error ("already registered")
  private generation = 0;
  /** the chip's findings per model file, by layer path (chip.ts) */
  private readonly chip = new Map<string, { platform: string; byLayer: Map<string, Finding[]>; model: Finding[] }>();

  /** Marks the rows of a model file's layers with the chip's findings (an empty list clears them). */
  setChip(file: string, platform: string, findings: Finding[]): void {
    const byLayer = new Map<string, Finding[]>();
    for (const f of findings) if (f.layer) byLayer.set(f.layer, [...(byLayer.get(f.layer) ?? []), f]);
    this.chip.set(file, { platform, byLayer, model: findings.filter((f) => !f.layer) });
    this.changed.fire(undefined);
  }

  /** The chip's marks go on the tree after traceLayers (the model init will make), or a model file's only tree. */
  private showsChip(root: ModelRoot): boolean {
    return !!root.file && (!!root.previous || this.roots.length === 1);
  }

  /** A row's findings (its own), and the platform they are for. */
  chipOf(node: ModelNode): { platform: string; findings: Finding[] } | undefined {
    const root = node.kind === 'root' ? node : node.root;
    const c = root.file ? this.chip.get(root.file) : undefined;
    if (!c) return undefined;
    return { platform: c.platform, findings: node.kind === 'root' ? c.model : (c.byLayer.get(node.entry.path) ?? []) };
  }

  showTrace(r: TraceResult): ModelRoot[] {
    const before: ModelRoot = { kind: 'root', tree: r.before, file: r.file, definitions: r.definitions };
    const after: ModelRoot = { kind: 'root', tree: r.after, file: r.file, definitions: r.definitions, previous: r.before, graph: r.graph };
    return this.show([before, after]);
  }

  /** A notebook kernel's live model, before and after the transform a cell just applied. */
  showKernelModel(before: ModelTree, after: ModelTree, notebook: string): ModelRoot[] {
    const b: ModelRoot = { kind: 'root', tree: before, kernel: notebook };
    return this.show([b, { kind: 'root', tree: after, kernel: notebook, previous: before }]);
  }

  /** Empties the view: its first screen again. */
  clear(): void {
    this.show([]);
  }

  /** One tree (a checkpoint's); `source` is the model file it was built from, for Reveal in Editor. */
  showTree(tree: ModelTree, graph?: Graph, source?: { file: string; definitions: Record<string, number> }): ModelRoot[] {
    return this.show([{ kind: 'root', tree, graph, ...source }]);
  }

  private show(roots: ModelRoot[]): ModelRoot[] {
    this.generation++;
    for (const r of roots) r.shown = this.generation;
    this.roots = roots;
    this.changed.fire(undefined);
    void vscode.commands.executeCommand('setContext', 'linger.modelShown', roots.length > 0);
    return roots;
  }

  getChildren(node?: ModelNode): ModelNode[] {
    if (!node) return this.roots;
    const root = node.kind === 'root' ? node : node.root;
    const parent = node.kind === 'root' ? '' : node.entry.path;
    const before = new Map((root.previous?.modules ?? []).map((e) => [e.path, e.type]));
    return root.tree.modules
      .filter(
        (e) =>
          e.path !== '' &&
          (parent === '' ? !e.path.includes('.') : e.path.startsWith(`${parent}.`) && !e.path.slice(parent.length + 1).includes('.')),
      )
      .map((entry) => {
        const was = before.get(entry.path);
        // a module whose class changed at its path (Conv2d → NormalizeConvBN2d); the pair moved
        // inside a fused module is not a replacement
        return {
          kind: 'module',
          root,
          entry,
          ...(root.previous && was !== undefined && was !== entry.type ? { replaced: was } : {}),
        } as ModuleNode;
      });
  }

  /** The module at a path in the last root that has it (after traceLayers, when there are two). */
  find(modulePath: string): ModuleNode | undefined {
    for (const root of [...this.roots].reverse()) {
      const entry = root.tree.modules.find((e) => e.path === modulePath);
      if (entry) {
        const was = new Map((root.previous?.modules ?? []).map((e) => [e.path, e.type])).get(modulePath);
        return { kind: 'module', root, entry, ...(root.previous && was !== undefined && was !== entry.type ? { replaced: was } : {}) };
      }
    }
    return undefined;
  }

  getParent(node: ModelNode): ModelNode | undefined {
    if (node.kind === 'root') return undefined;
    const p = node.entry.path;
    const up = p.includes('.') ? p.slice(0, p.lastIndexOf('.')) : '';
    if (!up) return node.root;
    const entry = node.root.tree.modules.find((e) => e.path === up);
    return entry && { kind: 'module', root: node.root, entry };
  }

  private hasChildren(root: ModelRoot, p: string): boolean {
    return root.tree.modules.some((e) => e.path.startsWith(`${p}.`));
  }

  getTreeItem(node: ModelNode): vscode.TreeItem {
    if (node.kind === 'root') {
      const t = node.tree;
      const rootEntry = t.modules.find((e) => e.path === '');
      const item = new vscode.TreeItem(t.label, vscode.TreeItemCollapsibleState.Expanded);
      const params = t.modules.reduce((a, e) => a + e.parameters, 0);
      item.description = `${rootEntry?.type ?? ''} · ${t.stage} · ${params.toLocaleString('en-US')} parameters${node.kernel ? ` · live in ${node.kernel}` : ''}`;
      item.iconPath = new vscode.ThemeIcon(node.kernel ? 'notebook' : node.previous ? 'type-hierarchy' : 'symbol-namespace');
      item.contextValue = `linger.modelRoot${t.text ? '.text' : ''}${node.graph ? '.graph' : ''}`;
      item.tooltip = t.text ? new vscode.MarkdownString().appendCodeblock(t.text, 'text') : undefined;
      // the chip's verdict on the model after traceLayers (what init and the thinker export make of it)
      const chip = this.showsChip(node) ? this.chipOf(node) : undefined;
      const all = chip && node.file ? [...(this.chip.get(node.file)?.byLayer.values() ?? [])].flat().concat(chip.findings) : [];
      if (chip) {
        const errors = all.filter((f) => f.severity === 'error').length;
        item.description += ` · ${chip.platform}: ${errors ? `${errors} error${errors === 1 ? '' : 's'}` : 'fits'}${all.length > errors ? `, ${all.length - errors} warning${all.length - errors === 1 ? '' : 's'}` : ''}`;
        if (chip.findings.length && item.tooltip instanceof vscode.MarkdownString)
          item.tooltip.appendMarkdown(`\n${chipTooltip(chip.platform, chip.findings)}`);
      }
      item.id = `root:${node.shown ?? 0}:${t.label}:${node.file ?? node.kernel ?? ''}`;
      return item;
    }
    const e = node.entry;
    const leaf = !this.hasChildren(node.root, e.path);
    const item = new vscode.TreeItem(
      lastName(e.path),
      leaf ? vscode.TreeItemCollapsibleState.None : vscode.TreeItemCollapsibleState.Expanded,
    );
    // settings as PyTorch prints them, when they fit on a line (the tooltip has them all); an Int
    // layer's bits are in its flags (int8/8/8), so its printout's bits are left out here
    const repr = e.bits ? e.repr?.replace(/,data_bits=\d+,parameter_bits=\d+,o_bits=\d+(,ahead_relu:(True|False))?/, '') : e.repr;
    const head = `${e.type}${repr && !repr.includes('\n') && repr.length <= 72 ? `(${repr})` : ''}`;
    const extra = [
      ...(node.replaced ? [`was ${node.replaced}`] : []),
      ...flags(e),
      ...(e.parameters ? [`${e.parameters.toLocaleString('en-US')} params`] : []),
    ];
    item.description = [head, ...extra].join(' · ');
    const md = new vscode.MarkdownString();
    md.appendMarkdown(
      `**${escapeMarkdown(e.path)}**: ${escapeMarkdown(e.type)}${node.replaced ? ` — replaced ${escapeMarkdown(node.replaced)} (traceLayers)` : ''}\n\n`,
    );
    if (e.repr) md.appendCodeblock(`${e.type}(${e.repr})`, 'text');
    for (const f of flags(e)) md.appendMarkdown(`- ${escapeMarkdown(f)}\n`);
    md.appendMarkdown(`- ${e.parameters.toLocaleString('en-US')} parameters (own)\n`);
    item.iconPath = new vscode.ThemeIcon(
      iconOf(e.type),
      node.replaced ? new vscode.ThemeColor('charts.orange') : e.aheadRelu ? new vscode.ThemeColor('charts.green') : undefined,
    );
    // the chip's findings on this layer (after traceLayers: the model as init will make it)
    const chip = this.showsChip(node.root) ? this.chipOf(node) : undefined;
    if (chip?.findings.length) {
      const error = chip.findings.some((f) => f.severity === 'error');
      item.iconPath = new vscode.ThemeIcon(
        error ? 'error' : 'warning',
        new vscode.ThemeColor(error ? 'errorForeground' : 'editorWarning.foreground'),
      );
      item.description = `${chip.findings.map((f) => `${error ? '✖' : '⚠'} ${f.rule}`).join(', ')} · ${item.description}`;
      md.appendMarkdown(`\n${chipTooltip(chip.platform, chip.findings)}\n`);
    }
    item.tooltip = md;
    item.contextValue = node.root.file ? 'linger.module.source' : 'linger.module';
    item.id = `mod:${node.root.shown ?? 0}:${node.root.tree.label}:${node.root.file ?? node.root.kernel ?? ''}:${e.path}`;
    const line = node.root.definitions?.[e.path];
    if (node.root.file && line !== undefined) {
      item.command = { command: 'linger.revealModule', title: 'Reveal in Editor', arguments: [node] };
    }
    return item;
  }

  dispose(): void {
    this.changed.dispose();
  }
}
