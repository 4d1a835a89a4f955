import * as vscode from 'vscode';

/**
 * The extension's entry point. The engine is loaded lazily (TF.js and the wasm backend are
 * heavy); for now the extension offers one command that reports the engine's backend.
 */
export function activate(context: vscode.ExtensionContext): void {
  context.subscriptions.push(
    vscode.commands.registerCommand('linger.showBackend', async () => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const engine = require('./engine.js') as typeof import('../engine/index');
      const name = await engine.initBackend();
      void vscode.window.showInformationMessage(`Linger Studio engine backend: ${name}`);
      return name;
    }),
  );
}

export function deactivate(): void { /* nothing held */ }
