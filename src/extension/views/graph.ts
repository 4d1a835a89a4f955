// The graph editor: a webview panel in the editor area (strict CSP, nonce, no remote resources) that
// draws the traced dataflow graph with dagre (dist/webview/graph.js), fused Conv+BN pairs and
// ahead-ReLU edges highlighted, and a node panel (type, shapes, parameters; an Int layer's bits,
// scales as 2^n and Q-format, folded BN). A click on a module selects it in the Model view; Save
// as SVG writes the drawing to a file. One editor, reused: it shows the graph asked for last.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { GraphChip, GraphPayload } from '../../webview/graph/model';

export interface RenderStats {
  nodes: number;
  edges: number;
  fused: number;
  ahead: number;
  error?: string;
}

/** The graph editor's webview panel type (package.json: activation, `activeWebviewPanelId`). */
export const GRAPH_EDITOR = 'linger.graphEditor';

export class GraphView implements vscode.WebviewPanelSerializer, vscode.Disposable {
  private view: vscode.WebviewPanel | undefined;
  private payload: GraphPayload | undefined;
  /** the chip's overlay of each model file checked (chip.ts), for its graph when it is shown */
  private readonly chips = new Map<string, GraphChip>();
  private readonly rendered = new vscode.EventEmitter<RenderStats>();
  /** the webview drew a graph (tests, and the extension's own log) */
  readonly onDidRender = this.rendered.event;
  lastRendered: RenderStats | undefined;
  /** what the node panel shows now (tests read it): its title and rows */
  lastProps: { title: string; subtitle: string; rows: [string, string][]; notes: string[] } | undefined;
  private svgWaiter: ((svg: string) => void) | undefined;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly onSelect: (path: string) => void,
  ) {}

  /** A graph editor VS Code restores after a reload (the webview keeps its payload in its state). */
  async deserializeWebviewPanel(panel: vscode.WebviewPanel, state: unknown): Promise<void> {
    if (state && typeof state === 'object' && 'graph' in state) this.payload = state as GraphPayload;
    this.attach(panel);
  }

  private open(preserveFocus: boolean): vscode.WebviewPanel {
    if (this.view) {
      this.view.reveal(undefined, preserveFocus);
      return this.view;
    }
    const dist = vscode.Uri.joinPath(this.extensionUri, 'dist', 'webview');
    const panel = vscode.window.createWebviewPanel(
      GRAPH_EDITOR,
      'Graph',
      { viewColumn: preserveFocus ? vscode.ViewColumn.Beside : vscode.ViewColumn.Active, preserveFocus },
      { enableScripts: true, localResourceRoots: [dist], retainContextWhenHidden: true },
    );
    this.attach(panel);
    return panel;
  }

  private attach(view: vscode.WebviewPanel): void {
    this.view = view;
    const dist = vscode.Uri.joinPath(this.extensionUri, 'dist', 'webview');
    view.webview.options = { enableScripts: true, localResourceRoots: [dist] };
    view.iconPath = vscode.Uri.joinPath(this.extensionUri, 'media', 'linger.svg');
    if (this.payload) view.title = `Graph: ${this.payload.title}`;
    view.webview.html = this.html(view.webview);
    for (const d of this.disposables.splice(0)) d.dispose(); // a view resolved again (moved, reopened)
    this.disposables.push(
      view.webview.onDidReceiveMessage((m: { type: string; path?: string; svg?: string } & Partial<RenderStats>) => {
        if (m.type === 'ready' && this.payload) void view.webview.postMessage({ type: 'show', payload: this.payload });
        else if (m.type === 'rendered') {
          this.lastRendered = {
            nodes: m.nodes ?? 0,
            edges: m.edges ?? 0,
            fused: m.fused ?? 0,
            ahead: m.ahead ?? 0,
            ...(m.error ? { error: m.error } : {}),
          };
          if (m.error) void vscode.window.showErrorMessage(`Linger: the graph cannot be drawn: ${m.error}`);
          this.rendered.fire(this.lastRendered);
        } else if (m.type === 'select' && m.path !== undefined) this.onSelect(m.path);
        else if (m.type === 'props') this.lastProps = (m as unknown as { details?: GraphView['lastProps'] }).details;
        else if (m.type === 'save') void vscode.commands.executeCommand('linger.saveGraphSvg');
        else if (m.type === 'svg' && m.svg) this.svgWaiter?.(m.svg);
      }),
      view.onDidDispose(() => {
        this.view = undefined;
      }),
    );
  }

  /**
   * Shows a graph in the editor (opening it; `preserveFocus`: beside the active editor, which keeps
   * the focus); resolves when the webview has drawn it, or with undefined when it reports an error
   * or does not answer within 15 s (the editor says why).
   */
  async show(payload: GraphPayload, opts: { preserveFocus?: boolean } = {}): Promise<RenderStats | undefined> {
    const chip = payload.chip ?? (payload.file ? this.chips.get(payload.file) : undefined);
    this.payload = chip ? { ...payload, chip } : payload;
    const drawn = new Promise<RenderStats | undefined>((resolve) => {
      const timer = setTimeout(() => {
        sub.dispose();
        resolve(undefined);
      }, 15_000);
      const sub = this.onDidRender((s) => {
        clearTimeout(timer);
        sub.dispose();
        resolve(s.error ? undefined : s);
      });
    });
    const had = !!this.view;
    const view = this.open(opts.preserveFocus ?? false);
    view.title = `Graph: ${payload.title}`;
    if (had) void view.webview.postMessage({ type: 'show', payload: this.payload });
    return drawn;
  }

  /** The chip's findings and memory plan for a model file: drawn when its graph is the one shown. */
  setChip(file: string, chip: GraphChip): void {
    this.chips.set(file, chip);
    if (!this.payload || this.payload.file !== file) return;
    this.payload = { ...this.payload, chip };
    void this.view?.webview.postMessage({ type: 'show', payload: this.payload });
  }

  /** Marks a module as selected in the drawing (the Model view's selection). */
  select(modulePath: string): void {
    void this.view?.webview.postMessage({ type: 'select', path: modulePath });
  }

  /** Activates a module's node as a click would: the webview selects it and reports it back. */
  activate(modulePath: string): void {
    void this.view?.webview.postMessage({ type: 'activate', path: modulePath });
  }

  /** The drawing as a standalone SVG (undefined when nothing is drawn). */
  async svg(): Promise<string | undefined> {
    if (!this.view || !this.payload) return undefined;
    return new Promise<string | undefined>((resolve) => {
      const timer = setTimeout(() => {
        this.svgWaiter = undefined;
        resolve(undefined);
      }, 5000);
      this.svgWaiter = (svg) => {
        clearTimeout(timer);
        this.svgWaiter = undefined;
        resolve(svg);
      };
      void this.view!.webview.postMessage({ type: 'svg' });
    });
  }

  get hasGraph(): boolean {
    return !!this.payload;
  }

  private html(webview: vscode.Webview): string {
    const nonce = randomBytes(16).toString('base64');
    const script = webview.asWebviewUri(vscode.Uri.joinPath(this.extensionUri, 'dist', 'webview', 'graph.js'));
    const css = fs.readFileSync(path.join(this.extensionUri.fsPath, 'media', 'graph', 'graph.css'), 'utf8');
    return `<!DOCTYPE html>
<html lang="en"><head><meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'nonce-${nonce}'; script-src 'nonce-${nonce}'; img-src ${webview.cspSource} data:;">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<style id="graph-style" nonce="${nonce}">${css}</style>
<title>Linger graph</title></head>
<body>
<div id="bar" role="toolbar" aria-label="Graph">
  <span id="title"></span>
  <button id="zoom-out" title="Zoom out" aria-label="Zoom out">−</button>
  <button id="zoom-in" title="Zoom in" aria-label="Zoom in">+</button>
  <button id="fit" title="Fit to view" aria-label="Fit to view">Fit</button>
  <span id="chip" aria-live="polite"></span>
  <button id="memory" title="Colour the layers by their memory (activation and weights)" aria-pressed="false" hidden>Memory</button>
  <button id="save" title="Save as SVG" aria-label="Save as SVG">SVG…</button>
</div>
<div id="empty">No graph yet. Trace a model file (<b>Linger: Trace Model File…</b>) or choose <b>Show Graph</b> on a traced or fixed checkpoint.</div>
<div id="main">
<svg id="graph" role="img" aria-label="Traced dataflow graph">
  <defs>
    <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z"/></marker>
    <marker id="arrow-ahead" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z"/></marker>
  </defs>
  <g id="viewport"></g>
</svg>
<aside id="props" aria-label="Node properties" aria-live="polite"></aside>
</div>
<script nonce="${nonce}" src="${script}"></script>
</body></html>`;
  }

  dispose(): void {
    this.rendered.dispose();
    for (const d of this.disposables) d.dispose();
  }
}
