// The extension tests' entry point, loaded by VS Code's extension host as `extensionTestsPath`
// (the same contract as @vscode/test-electron): `run` resolves when every test passed. Started by
// scripts/extension-test.mjs, which compiles this folder to out/test/suite/.
import * as fs from 'node:fs';
import * as path from 'node:path';
import Mocha from 'mocha';

// scripts/extension-test.mjs hides the workbench's start-up log before START_MARKER and reads
// SUMMARY_MARKER's counts to print `N passed, N failed`.
export const START_MARKER = '[linger-extension-tests] start';
export const SUMMARY_MARKER = '[linger-extension-tests] summary ';

function collectTests(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) return collectTests(p);
    return entry.name.endsWith('.test.js') ? [p] : [];
  });
}

export function run(): Promise<void> {
  return runTestsIn(__dirname);
}

/** Runs every *.test.js under `dir` with mocha (the .vsix suite runs its own folder the same way). */
export function runTestsIn(dir: string): Promise<void> {
  // Failures then point at test/extension/suite/*.ts, not the compiled JS (inline source maps).
  process.setSourceMapsEnabled(true);
  const mocha = new Mocha({
    ui: 'tdd',
    reporter: 'spec',
    color: false, // the output travels as plain log lines to the runner's terminal
    timeout: 60_000, // the first command loads TF.js and its wasm backend inside the host
    grep: process.env.LINGER_EXTENSION_TEST_GREP || undefined,
  });
  const files = collectTests(dir).sort();
  if (files.length === 0) return Promise.reject(new Error(`no *.test.js files under ${dir}`));
  for (const f of files) mocha.addFile(f);

  console.log(START_MARKER);
  return new Promise((resolve, reject) => {
    const runner = mocha.run((failures) => {
      const { passes = 0, pending = 0 } = runner.stats ?? {};
      console.log(SUMMARY_MARKER + JSON.stringify({ passes, failures, pending }));
      if (failures > 0) reject(new Error(`${failures} extension test(s) failed`));
      else if (passes === 0) reject(new Error('no extension test ran (check LINGER_EXTENSION_TEST_GREP)'));
      else resolve();
    });
  });
}
