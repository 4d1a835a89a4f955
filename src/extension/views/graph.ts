// The Graph view: a webview (strict CSP, nonce, no remote resources) that draws the traced dataflow
// graph with dagre (dist/webview/graph.js), fused Conv+BN pairs and ahead-ReLU edges highlighted.
// A click on a module selects it in the Model view; Save as SVG writes the drawing to a file.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { GraphPayload } from '../../webview/graph/model';

export interface RenderStats {
  nodes: number;
  edges: number;
  fused: number;
  ahead: number;
  error?: string;
}

export class GraphView implements vscode.WebviewViewProvider, vscode.Disposable {
  private view: vscode.WebviewView | undefined;
  private payload: GraphPayload | undefined;
  private readonly rendered = new vscode.EventEmitter<RenderStats>();
  /** the webview drew a graph (tests, and the extension's own log) */
  readonly onDidRender = this.rendered.event;
  lastRendered: RenderStats | undefined;
  private svgWaiter: ((svg: string) => void) | undefined;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly onSelect: (path: string) => void,
  ) {}

  resolveWebviewView(view: vscode.WebviewView): void {
    this.view = view;
    const dist = vscode.Uri.joinPath(this.extensionUri, 'dist', 'webview');
    view.webview.options = { enableScripts: true, localResourceRoots: [dist] };
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
        else if (m.type === 'save') void vscode.commands.executeCommand('linger.saveGraphSvg');
        else if (m.type === 'svg' && m.svg) this.svgWaiter?.(m.svg);
      }),
      view.onDidDispose(() => {
        this.view = undefined;
      }),
    );
  }

  /**
   * Shows a graph (opening the view); resolves when the webview has drawn it, or with undefined
   * when it reports an error or does not answer within 15 s (the view logs why).
   */
  async show(payload: GraphPayload): Promise<RenderStats | undefined> {
    this.payload = payload;
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
    if (this.view) void this.view.webview.postMessage({ type: 'show', payload });
    await vscode.commands.executeCommand('linger.graph.focus');
    this.view?.show?.(true);
    return drawn;
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
  <button id="save" title="Save as SVG" aria-label="Save as SVG">SVG…</button>
</div>
<div id="empty">No graph yet. Trace a model file (<b>Linger: Trace Model File…</b>) or choose <b>Show Graph</b> on a traced or fixed checkpoint.</div>
<svg id="graph" role="img" aria-label="Traced dataflow graph">
  <defs>
    <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z"/></marker>
    <marker id="arrow-ahead" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z"/></marker>
  </defs>
  <g id="viewport"></g>
</svg>
<script nonce="${nonce}" src="${script}"></script>
</body></html>`;
  }

  dispose(): void {
    this.rendered.dispose();
    for (const d of this.disposables) d.dispose();
  }
}
