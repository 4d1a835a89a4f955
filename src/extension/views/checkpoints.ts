// The Checkpoints view: experiments (a checkpoint's folder) → stages (float / traced / fixed, in
// pipeline order, from the linger.stage metadata) → checkpoints, from the workspace glob
// `linger.checkpointsGlob`. Headers are read by the engine process; nothing is executed, so the
// view works in untrusted workspaces. A file that is not a valid checkpoint is an error item.
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { CheckpointSummary } from '../../engine/host/protocol';
import { CheckpointSummaryRequest } from '../../engine/host/protocol';
import { EngineClient } from '../engineClient';

const STAGES = ['float', 'traced', 'fixed'] as const;
const POLL_MS = 3000;
type Stage = (typeof STAGES)[number];
const STAGE_LABEL: Record<Stage, string> = { float: 'float', traced: 'traced (float stage)', fixed: 'fixed point' };
const STAGE_ICON: Record<Stage, string> = { float: 'pulse', traced: 'type-hierarchy', fixed: 'symbol-numeric' };

export type CheckpointNode =
  | { kind: 'experiment'; dir: string; label: string }
  | { kind: 'stage'; dir: string; stage: Stage }
  | { kind: 'checkpoint'; uri: vscode.Uri; summary: CheckpointSummary }
  | { kind: 'error'; uri: vscode.Uri; message: string };

interface Entry {
  uri: vscode.Uri;
  mtime: number;
  size: number;
  result: CheckpointSummary | { error: string };
}

/** Text from files (names, metadata) as literal Markdown: nothing in it formats, links or loads. */
export function escapeMarkdown(s: string): string {
  return s.replace(/[\\`*_{}[\]()<>#+\-.!|&~]/g, '\\$&');
}

export function formatSize(n: number): string {
  return n < 1024 ? `${n} B` : n < 1024 ** 2 ? `${(n / 1024).toFixed(1)} KB` : `${(n / 1024 ** 2).toFixed(1)} MB`;
}
function metricsText(m: Record<string, number>): string {
  return Object.entries(m)
    .map(([k, v]) => `${k}=${Number.isInteger(v) ? v : v.toFixed(4)}`)
    .join(' ');
}
function timeText(iso?: string): string {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

export class CheckpointsView implements vscode.TreeDataProvider<CheckpointNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<CheckpointNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private entries = new Map<string, Entry>();
  private watchers: vscode.FileSystemWatcher[] = [];
  private generation = 0;
  private poll: NodeJS.Timeout | undefined;
  private scan: Promise<void> | undefined;
  private refreshTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly engine: EngineClient,
    private readonly output: vscode.OutputChannel,
  ) {
    this.watch();
  }

  private glob(): string {
    return vscode.workspace.getConfiguration('linger').get<string>('checkpointsGlob', '**/checkpoints/**/*.{safetensors,pt,pth}');
  }

  /**
   * (Re)creates the watchers; called again when the setting changes. Besides the glob itself, its
   * folder part (the glob without its last segment): a folder created with its files at once (a new
   * experiment) is reported as the folder alone, and a checkpoint written atomically arrives by a
   * rename.
   */
  watch(): void {
    for (const w of this.watchers) w.dispose();
    const glob = this.glob();
    const folders = glob.includes('/') ? glob.slice(0, glob.lastIndexOf('/')) : undefined;
    this.watchers = [glob, ...(folders && folders !== '**' ? [folders] : [])].map((g) => {
      const w = vscode.workspace.createFileSystemWatcher(g);
      const later = () => this.refreshSoon();
      w.onDidCreate(later);
      w.onDidChange(later);
      w.onDidDelete(later);
      return w;
    });
  }

  /** Coalesces bursts of file events (a save writes a temp file, then renames it). */
  refreshSoon(): void {
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => {
      void this.refresh();
    }, 150);
  }

  async refresh(): Promise<void> {
    const before = this.signature();
    this.scan = this.load();
    await this.scan;
    if (this.signature() !== before) this.changed.fire(undefined);
  }

  /** Which files, at which versions, the view shows. */
  private signature(): string {
    return [...this.entries.values()]
      .map((e) => `${e.uri.fsPath}@${e.mtime}:${e.size}`)
      .sort()
      .join('|');
  }

  /**
   * While the view is visible it also rescans every few seconds (a stat per file; only changed
   * files are read again): file watchers miss events on some systems (containers, network
   * folders, a folder created with its files at once).
   */
  setVisible(visible: boolean): void {
    if (visible && !this.poll)
      this.poll = setInterval(() => {
        void this.refresh();
      }, POLL_MS);
    if (!visible && this.poll) {
      clearInterval(this.poll);
      this.poll = undefined;
    }
  }

  /** Waits for the latest scan: one that started while we waited supersedes the one we awaited. */
  private async settled(): Promise<void> {
    if (!this.scan) this.scan = this.load();
    for (let s = this.scan; ; s = this.scan!) {
      await s;
      if (s === this.scan) return;
    }
  }

  /** Every checkpoint item currently shown (for tests and commands). */
  async items(): Promise<CheckpointNode[]> {
    await this.settled();
    return [...this.entries.values()].map((e) => this.leaf(e));
  }

  private async load(): Promise<void> {
    // a later scan may finish first (this one waited on the engine): only the latest one counts
    const generation = ++this.generation;
    const uris = await vscode.workspace.findFiles(this.glob(), '**/node_modules/**');
    const next = new Map<string, Entry>();
    await Promise.all(
      uris.map(async (uri) => {
        let stat: vscode.FileStat;
        try {
          stat = await vscode.workspace.fs.stat(uri);
        } catch {
          return; // deleted meanwhile
        }
        const old = this.entries.get(uri.fsPath);
        // a read that failed is tried again (the engine may have been restarting), a good one is kept
        if (old && old.mtime === stat.mtime && old.size === stat.size && !('error' in old.result)) {
          next.set(uri.fsPath, old);
          return;
        }
        let result: Entry['result'];
        try {
          result = await this.engine.request(CheckpointSummaryRequest, { file: uri.fsPath }, `read ${path.basename(uri.fsPath)}`);
        } catch (e) {
          result = { error: (e as Error).message };
        }
        next.set(uri.fsPath, { uri, mtime: stat.mtime, size: stat.size, result });
      }),
    );
    if (generation !== this.generation) return;
    this.entries = next;
    const broken = [...next.values()].filter((e) => 'error' in e.result).length;
    this.output.appendLine(`[checkpoints] ${next.size} file(s) match ${this.glob()}${broken ? `, ${broken} cannot be read` : ''}`);
  }

  private leaf(e: Entry): CheckpointNode {
    return 'error' in e.result
      ? { kind: 'error', uri: e.uri, message: e.result.error }
      : { kind: 'checkpoint', uri: e.uri, summary: e.result };
  }

  private experimentOf(uri: vscode.Uri): string {
    return path.dirname(uri.fsPath);
  }

  async getChildren(node?: CheckpointNode): Promise<CheckpointNode[]> {
    await this.settled();
    const all = [...this.entries.values()];
    if (!node) {
      const dirs = [...new Set(all.map((e) => this.experimentOf(e.uri)))].sort();
      return dirs.map((dir) => ({ kind: 'experiment', dir, label: vscode.workspace.asRelativePath(dir, true) }));
    }
    if (node.kind === 'experiment') {
      const here = all.filter((e) => this.experimentOf(e.uri) === node.dir);
      const stages = STAGES.filter((s) => here.some((e) => !('error' in e.result) && e.result.stage === s));
      const broken = here.filter((e) => 'error' in e.result).map((e) => this.leaf(e));
      return [...stages.map((stage): CheckpointNode => ({ kind: 'stage', dir: node.dir, stage })), ...broken];
    }
    if (node.kind === 'stage') {
      return all
        .filter((e) => this.experimentOf(e.uri) === node.dir && !('error' in e.result) && e.result.stage === node.stage)
        .sort((a, b) => a.uri.fsPath.localeCompare(b.uri.fsPath))
        .map((e) => this.leaf(e));
    }
    return [];
  }

  getParent(node: CheckpointNode): CheckpointNode | undefined {
    const experiment = (dir: string): CheckpointNode => ({ kind: 'experiment', dir, label: vscode.workspace.asRelativePath(dir, true) });
    switch (node.kind) {
      case 'experiment':
        return undefined;
      case 'stage':
        return experiment(node.dir);
      case 'error':
        return experiment(this.experimentOf(node.uri));
      case 'checkpoint':
        return { kind: 'stage', dir: this.experimentOf(node.uri), stage: node.summary.stage };
    }
  }

  getTreeItem(node: CheckpointNode): vscode.TreeItem {
    switch (node.kind) {
      case 'experiment': {
        const item = new vscode.TreeItem(path.basename(node.dir), vscode.TreeItemCollapsibleState.Expanded);
        item.description = path.dirname(node.label) === '.' ? undefined : path.dirname(node.label);
        item.iconPath = new vscode.ThemeIcon('beaker');
        item.tooltip = node.dir;
        item.contextValue = 'linger.experiment';
        item.id = `exp:${node.dir}`;
        return item;
      }
      case 'stage': {
        const item = new vscode.TreeItem(STAGE_LABEL[node.stage], vscode.TreeItemCollapsibleState.Expanded);
        item.iconPath = new vscode.ThemeIcon(STAGE_ICON[node.stage]);
        item.contextValue = 'linger.stage';
        item.id = `stage:${node.dir}:${node.stage}`;
        return item;
      }
      case 'error': {
        const item = new vscode.TreeItem(path.basename(node.uri.fsPath), vscode.TreeItemCollapsibleState.None);
        item.description = 'cannot be read';
        item.tooltip = new vscode.MarkdownString(
          `**${escapeMarkdown(path.basename(node.uri.fsPath))}** is not a valid checkpoint:\n\n${escapeMarkdown(node.message)}`,
        );
        item.iconPath = new vscode.ThemeIcon('error', new vscode.ThemeColor('errorForeground'));
        item.resourceUri = node.uri;
        item.contextValue = 'linger.checkpoint.error';
        item.id = `err:${node.uri.fsPath}`;
        return item;
      }
      case 'checkpoint': {
        const s = node.summary;
        const item = new vscode.TreeItem(path.basename(node.uri.fsPath), vscode.TreeItemCollapsibleState.None);
        const parts = [s.linger ? metricsText(s.metrics) : 'no linger metadata', formatSize(s.size), timeText(s.created)].filter(Boolean);
        item.description = parts.join(' · ');
        const md = new vscode.MarkdownString();
        md.appendMarkdown(
          `**${escapeMarkdown(path.basename(node.uri.fsPath))}** — ${s.linger ? `${s.stage} stage` : `${/\.pth?$/i.test(node.uri.fsPath) ? 'a PyTorch .pt file' : 'plain safetensors'} (no linger metadata): ${s.stage} stage, from linger's key names`}\n\n`,
        );
        const rows: [string, string | undefined][] = [
          ['model', s.model],
          ['created', timeText(s.created)],
          ['metrics', metricsText(s.metrics) || undefined],
          ['parent', s.parent],
          ['size', formatSize(s.size)],
          ['tensors', `${s.tensors} (${s.parameters.toLocaleString('en-US')} values)`],
          ['transforms', s.transforms?.length ? s.transforms.join(' → ') : undefined],
          ['optimizer', s.optimizer],
          ['version', s.version],
        ];
        for (const [k, v] of rows) if (v) md.appendMarkdown(`- ${k}: ${escapeMarkdown(v)}\n`);
        if (!s.moduleTree)
          md.appendMarkdown(
            '\n*Show Model Tree* builds its model from the model file that defines it (a PyTorch `.py` or a TypeScript one), asked once for this folder.\n',
          );
        item.tooltip = md;
        item.iconPath = new vscode.ThemeIcon(s.linger ? 'database' : 'file-binary');
        item.resourceUri = node.uri;
        item.contextValue = s.moduleTree ? 'linger.checkpoint.tree' : 'linger.checkpoint';
        item.id = `ckpt:${node.uri.fsPath}`;
        item.command = { command: 'linger.inspectCheckpoint', title: 'Inspect', arguments: [node] };
        return item;
      }
    }
  }

  dispose(): void {
    for (const w of this.watchers) w.dispose();
    this.changed.dispose();
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    this.setVisible(false);
  }
}
