// What the extension suites share: the extension's id, the runner's screenshot marker, waiting,
// pictures in both default themes.
import * as vscode from 'vscode';
export const EXTENSION_ID = 'linger-studio.linger-studio'; // publisher.name from package.json
/** scripts/extension-test.mjs takes a screenshot when a line starts with this, then the name */
export const SCREENSHOT_MARKER = '[linger-extension-tests] screenshot ';

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `fn` until it gives something other than undefined or false; a failure bound, not a threshold. */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 60_000,
): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

/** The same picture in VS Code's light and dark default themes (`<name>-light`, `<name>-dark`). */
export async function themedScreenshots(screenshot: (name: string) => Promise<void>, name: string): Promise<void> {
  const cfg = () => vscode.workspace.getConfiguration('workbench');
  const before = cfg().inspect<string>('colorTheme')?.globalValue;
  try {
    for (const [suffix, theme] of [
      ['light', 'Default Light Modern'],
      ['dark', 'Default Dark Modern'],
    ]) {
      await cfg().update('colorTheme', theme, vscode.ConfigurationTarget.Global);
      await sleep(800);
      await screenshot(`${name}-${suffix}`);
    }
  } finally {
    await cfg().update('colorTheme', before, vscode.ConfigurationTarget.Global);
  }
}
