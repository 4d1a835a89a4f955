// Inspect, Compare and the experiment view as read-only editors: a webview panel per checkpoint (pair, experiment) in the editor
// area, its page made by reportHtml.ts. No script runs in them (CSP: styles by nonce only), nothing
// to save, closing asks nothing.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';

export const INSPECT_EDITOR = 'linger.inspect';
export const COMPARE_EDITOR = 'linger.compare';
export const EXPERIMENT_EDITOR = 'linger.experiment';

export class ReportPanels implements vscode.Disposable {
  private readonly panels = new Map<string, vscode.WebviewPanel>();
  /** the page each open report shows (tests read it), by its key */
  readonly html = new Map<string, string>();

  constructor(private readonly extensionUri: vscode.Uri) {}

  /** Opens (or refreshes and reveals) the report `key` with this title and page body. */
  show(
    kind: typeof INSPECT_EDITOR | typeof COMPARE_EDITOR | typeof EXPERIMENT_EDITOR,
    key: string,
    title: string,
    body: string,
  ): vscode.WebviewPanel {
    let panel = this.panels.get(key);
    if (!panel) {
      panel = vscode.window.createWebviewPanel(kind, title, vscode.ViewColumn.Active, { enableScripts: false, localResourceRoots: [] });
      panel.iconPath = vscode.Uri.joinPath(this.extensionUri, 'media', 'linger.svg');
      const p = panel;
      p.onDidDispose(() => {
        this.panels.delete(key);
        this.html.delete(key);
      });
      this.panels.set(key, p);
    } else panel.reveal();
    panel.title = title;
    const nonce = randomBytes(16).toString('base64');
    const css = fs.readFileSync(path.join(this.extensionUri.fsPath, 'media', 'report.css'), 'utf8');
    panel.webview.html = `<!DOCTYPE html>
<html lang="en"><head><meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'nonce-${nonce}';">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<style nonce="${nonce}">${css}</style>
<title>${title.replace(/[<&]/g, '')}</title></head>
<body>${body}</body></html>`;
    this.html.set(key, body);
    return panel;
  }

  /** Whether the report `key` is open. */
  isOpen(key: string): boolean {
    return this.panels.has(key);
  }

  dispose(): void {
    for (const p of this.panels.values()) p.dispose();
  }
}
