import * as vscode from 'vscode';
import { LoadOrderDiagnostics } from './diagnostics/loadOrder';

/**
 * The extension's entry point: load-order diagnostics for linger scripts and notebooks, and the
 * commands. The engine (TF.js, wasm) loads lazily, only when a command needs it.
 */
export function activate(context: vscode.ExtensionContext): { loadOrder: LoadOrderDiagnostics } {
  const output = vscode.window.createOutputChannel('Linger Studio');
  const loadOrder = new LoadOrderDiagnostics(output);
  loadOrder.activate(context);
  context.subscriptions.push(
    output,
    vscode.commands.registerCommand('linger.showBackend', async () => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const engine = require('./engine.js') as typeof import('../engine/index');
      const name = await engine.initBackend();
      void vscode.window.showInformationMessage(`Linger Studio engine backend: ${name}`);
      return name;
    }),
    vscode.commands.registerCommand('linger.checkLoadOrder', async () => {
      const r = await loadOrder.checkWorkspace();
      const text = `Linger: ${r.files} file(s) checked — ${r.errors} error(s), ${r.warnings} warning(s) in the load order`;
      if (r.errors || r.warnings) void vscode.window.showWarningMessage(text, 'Show Problems').then((c) => c && vscode.commands.executeCommand('workbench.actions.view.problems'));
      else void vscode.window.showInformationMessage(text);
      return r;
    }),
  );
  return { loadOrder };
}

export function deactivate(): void { /* subscriptions are disposed by VS Code */ }
