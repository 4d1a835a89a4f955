// Runs the extension tests (test/extension/suite/) inside a real VS Code extension host: code-server
// 4.100.3 (VS Code 1.100.3) driven by Debian's Chromium through playwright-core, as
// NOTES-MACHINE.md ("A real VS Code for extension tests") describes. @vscode/test-electron cannot be
// used here: it downloads VS Code at test time.
//
//   scripts/install-code-server.sh       once (idempotent): code-server, chromium
//   npm run build                        the extension under test: dist/extension.js
//   node scripts/extension-test.mjs      compiles the suite, runs it, exits with its exit code
//   node scripts/extension-test.mjs --vsix linger-studio-linux-x64-<v>.vsix
//                                        installs that .vsix into an empty extensions folder and runs
//                                        test/extension/vsix/ against it (the runner extension that
//                                        hosts the tests, test/extension/vsix-runner, contributes
//                                        nothing, so the installed extension is the one under test)
//
// The workbench is opened with the `payload` query that sets extensionDevelopmentPath (this repo)
// and extensionTestsPath (the compiled suite's index.js), as `code --extensionTestsPath` would.
// The extension host then runs mocha; VS Code hands its log lines to `window.codeAutomationLog`
// and its exit code to `window.codeAutomationExit`, which we expose to the page.
//
// Environment:
//   LINGER_CODE_SERVER_DIR            where install-code-server.sh put code-server
//   LINGER_CHROMIUM                   browser binary (default /usr/bin/chromium)
//   LINGER_EXTENSION_TEST_GREP        run only the tests whose full title matches (mocha --grep)
//   LINGER_EXTENSION_TEST_TIMEOUT_S   overall limit, default 900 (a bound for a hung run: the suites take about 5–8 minutes)
//   LINGER_EXTENSION_TEST_VERBOSE=1   also print code-server's and the workbench's own logs
//   LINGER_EXTENSION_TEST_KEEP=1      keep the temp folder (workspace, user data, logs)
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as util from 'node:util';
import * as esbuild from 'esbuild';
import { chromium } from 'playwright-core';

const CODE_SERVER_VERSION = '4.100.3';
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const vsixAt = process.argv.indexOf('--vsix');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const vsixArg = process.argv[vsixAt + 1];
// --vsix alone: what `npm run package` writes
const vsix =
  vsixAt > 0
    ? path.resolve(vsixArg && !vsixArg.startsWith('--') ? vsixArg : path.join(root, `${pkg.name}-linux-x64-${pkg.version}.vsix`))
    : undefined;
const testsSrc = path.join(root, 'test/extension');
const testsOut = path.join(root, 'out/test');
const suiteOut = path.join(testsOut, vsix ? 'vsix' : 'suite');
const workspaceSrc = path.join(root, 'test/extension/workspace');
// Keep in step with the markers in test/extension/suite/index.ts.
const START_MARKER = '[linger-extension-tests] start';
const SUMMARY_MARKER = '[linger-extension-tests] summary ';
const SCREENSHOT_MARKER = '[linger-extension-tests] screenshot ';
const screenshotDir = path.join(root, 'test-results');

const codeServerDir =
  process.env.LINGER_CODE_SERVER_DIR ||
  path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'linger-studio', `code-server-${CODE_SERVER_VERSION}`);
const codeServerEntry = path.join(codeServerDir, 'node_modules/code-server/out/node/entry.js');
const chromiumPath = process.env.LINGER_CHROMIUM || '/usr/bin/chromium';
const timeoutS = Number(process.env.LINGER_EXTENSION_TEST_TIMEOUT_S || 900);
const verbose = process.env.LINGER_EXTENSION_TEST_VERBOSE === '1';
const keep = process.env.LINGER_EXTENSION_TEST_KEEP === '1';

function fail(message) {
  console.error(`extension-test: ${message}`);
  console.log('0 passed, 0 failed');
  process.exit(1);
}

// --- preconditions ------------------------------------------------------------------------------
if (vsix && !fs.existsSync(vsix)) fail(`no .vsix at ${vsix}: run \`npm run package\` first`);
if (!vsix && !fs.existsSync(path.join(root, 'dist/extension.js'))) fail('dist/extension.js is missing: run `npm run build` first');
if (!fs.existsSync(codeServerEntry)) fail(`code-server is not installed in ${codeServerDir}: run scripts/install-code-server.sh`);
if (!fs.existsSync(chromiumPath)) fail(`no browser at ${chromiumPath}: run scripts/install-code-server.sh (apt-get install chromium)`);

// --- compile the suite --------------------------------------------------------------------------
function collectTs(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? collectTs(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}
fs.rmSync(testsOut, { recursive: true, force: true }); // no stale *.test.js from deleted sources
// One JS file per TS file, not bundled: `vscode` and `mocha` must stay real requires, resolved by
// the extension host (vscode) and from this repo's node_modules (mocha, one shared instance).
await esbuild.build({
  entryPoints: [...collectTs(path.join(testsSrc, 'suite')), ...collectTs(path.join(testsSrc, 'vsix'))],
  outdir: testsOut,
  outbase: testsSrc,
  bundle: false,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: 'inline',
  logLevel: 'warning',
});

// --- temp folders -------------------------------------------------------------------------------
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'linger-ext-test-'));
const dirs = Object.fromEntries(
  ['xdg-config', 'xdg-data', 'xdg-cache', 'user-data', 'extensions', 'workspace'].map((name) => [name, path.join(tmp, name)]),
);
for (const d of Object.values(dirs)) fs.mkdirSync(d, { recursive: true });
fs.cpSync(workspaceSrc, dirs.workspace, { recursive: true });
fs.mkdirSync(path.join(dirs['user-data'], 'User'), { recursive: true });
fs.writeFileSync(
  path.join(dirs['user-data'], 'User/settings.json'),
  JSON.stringify(
    {
      'workbench.startupEditor': 'none',
      'extensions.autoCheckUpdates': false,
      'extensions.autoUpdate': false,
      'update.mode': 'none',
      'telemetry.telemetryLevel': 'off',
      // LINGER_EXTENSION_TEST_THEME='Default Dark Modern': the screenshots in another colour theme
      ...(process.env.LINGER_EXTENSION_TEST_THEME ? { 'workbench.colorTheme': process.env.LINGER_EXTENSION_TEST_THEME } : {}),
    },
    null,
    2,
  ),
);
const serverLog = path.join(tmp, 'code-server.log');

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// --- state the cleanup needs --------------------------------------------------------------------
let server; // code-server, leader of its own process group
let serverExited = false;
let groupKilled = false;
let browser;
let cleaning;

function killServerGroup(signal) {
  if (!server || serverExited) return;
  try {
    process.kill(-server.pid, signal);
  } catch {
    /* group already gone */
  }
}

async function cleanup() {
  cleaning ??= (async () => {
    if (browser) await Promise.race([browser.close().catch(() => {}), sleep(5000)]);
    if (server && !serverExited) {
      killServerGroup('SIGTERM');
      const deadline = Date.now() + 5000;
      while (!serverExited && Date.now() < deadline) await sleep(100);
      // The extension host and pty host may outlive the server a moment: kill the group outright.
      try {
        process.kill(-server.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    groupKilled = true;
    if (keep) console.error(`extension-test: kept ${tmp}`);
    else fs.rmSync(tmp, { recursive: true, force: true });
  })();
  return cleaning;
}

// Last resort if this process dies unexpectedly: synchronously kill the group.
process.on('exit', () => {
  if (server && !groupKilled)
    try {
      process.kill(-server.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
});
for (const [sig, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
]) {
  process.on(sig, async () => {
    console.error(`extension-test: ${sig}, stopping code-server and the browser`);
    await cleanup();
    process.exit(code);
  });
}

const tStart = Date.now();
function phase(what) {
  if (verbose) console.error(`extension-test: ${what} at ${((Date.now() - tStart) / 1000).toFixed(1)} s`);
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

function tail(file, lines = 40) {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

// --- run ----------------------------------------------------------------------------------------
const counts = { passes: 0, failures: 0, pending: 0, seen: false };
let started = false; // the suite printed START_MARKER
const preamble = []; // workbench log lines before that

async function main() {
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const logFd = fs.openSync(serverLog, 'a');
  if (vsix) {
    // into the empty extensions folder of this run, the way a user installs it
    const r = spawnSync(
      process.execPath,
      [codeServerEntry, '--user-data-dir', dirs['user-data'], '--extensions-dir', dirs.extensions, '--install-extension', vsix],
      {
        cwd: tmp,
        encoding: 'utf8',
        env: { ...process.env, XDG_CONFIG_HOME: dirs['xdg-config'], XDG_DATA_HOME: dirs['xdg-data'], XDG_CACHE_HOME: dirs['xdg-cache'] },
      },
    );
    if (r.status !== 0) throw new Error(`installing ${vsix} failed:\n${r.stdout}\n${r.stderr}`);
    console.log(
      `extension-test: installed ${path.basename(vsix)} into an empty extensions folder: ${fs
        .readdirSync(dirs.extensions)
        .filter((d) => !d.startsWith('.'))
        .join(', ')}`,
    );
  }
  // detached: the child calls setsid(), so it and everything it forks (extension host, pty host,
  // file watcher) form one process group that cleanup() kills as a whole.
  server = spawn(
    process.execPath,
    [
      codeServerEntry,
      '--bind-addr',
      `127.0.0.1:${port}`,
      '--auth',
      'none',
      '--disable-telemetry',
      '--disable-update-check',
      // Without it, a trust dialog nobody can answer blocks e.g. running notebook cells.
      '--disable-workspace-trust',
      '--disable-getting-started-override',
      '--user-data-dir',
      dirs['user-data'],
      '--extensions-dir',
      dirs.extensions,
      dirs.workspace,
    ],
    {
      cwd: tmp,
      detached: true,
      stdio: ['ignore', logFd, logFd],
      env: {
        ...process.env,
        XDG_CONFIG_HOME: dirs['xdg-config'],
        XDG_DATA_HOME: dirs['xdg-data'],
        XDG_CACHE_HOME: dirs['xdg-cache'],
        // No extension gallery (code-server defaults to open-vsx.org): offline, its lookup only
        // fails after a DNS timeout and delays the extension host by ~5 s.
        EXTENSIONS_GALLERY: '{}',
      },
    },
  );
  fs.closeSync(logFd);
  server.on('exit', () => {
    serverExited = true;
  });

  // /healthz answers once the HTTP server is up.
  const upBy = Date.now() + 60_000;
  for (;;) {
    if (serverExited) throw new Error(`code-server exited during start-up:\n${tail(serverLog)}`);
    try {
      if ((await fetch(`${origin}/healthz`)).ok) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > upBy) throw new Error(`code-server did not answer ${origin}/healthz within 60 s:\n${tail(serverLog)}`);
    await sleep(200);
  }
  phase(`code-server answered ${origin}/healthz`);

  browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
  phase('chromium started');

  let resolveExit;
  const exited = new Promise((r) => {
    resolveExit = r;
  });
  // Everything the workbench logs arrives here, the extension host's console included, as
  // console-style arguments (mocha's reporter passes printf formats). Lines before the suite's
  // start marker are the workbench starting up (and its failed gallery lookup, offline): shown
  // with LINGER_EXTENSION_TEST_VERBOSE=1, or when the suite never started.
  await page.exposeFunction('codeAutomationLog', (type, args) => {
    const text = util.format(...(Array.isArray(args) ? args : [args]));
    for (const line of text.split('\n')) {
      if (line.includes(START_MARKER)) {
        started = true;
        phase('suite started');
        continue;
      }
      const shot = line.indexOf(SCREENSHOT_MARKER);
      if (shot >= 0) {
        // a test asked for a picture of the workbench as it is now (it waits a moment for it)
        const name = line
          .slice(shot + SCREENSHOT_MARKER.length)
          .trim()
          .replace(/[^\w.-]/g, '_');
        fs.mkdirSync(screenshotDir, { recursive: true });
        page.screenshot({ path: path.join(screenshotDir, `${name}.png`) }).then(
          () => console.log(`  (screenshot test-results/${name}.png)`),
          (e) => console.error(`screenshot ${name} failed: ${e.message}`),
        );
        continue;
      }
      const at = line.indexOf(SUMMARY_MARKER);
      if (at >= 0) {
        Object.assign(counts, JSON.parse(line.slice(at + SUMMARY_MARKER.length)), { seen: true });
        continue;
      }
      const out = type === 'error' ? console.error : console.log;
      if (started || verbose) out(line);
      else preamble.push([out, line]);
    }
  });
  await page.exposeFunction('codeAutomationExit', (code) => {
    phase(`extension host exited ${code}`);
    resolveExit(Number(code));
  });
  if (verbose) {
    page.on('console', (m) => console.error(`[workbench ${m.type()}] ${m.text()}`));
    page.on('pageerror', (e) => console.error(`[workbench pageerror] ${e.message}`));
  }

  const remote = (p) => `vscode-remote://127.0.0.1:${port}${p}`;
  const payload = [
    ['extensionDevelopmentPath', remote(vsix ? path.join(testsSrc, 'vsix-runner') : root)],
    ['extensionTestsPath', remote(path.join(suiteOut, 'index.js'))],
  ];
  const url = `${origin}/?folder=${encodeURIComponent(dirs.workspace)}&payload=${encodeURIComponent(JSON.stringify(payload))}`;
  await page.goto(url);
  return exited;
}

let exitCode;
let timer;
try {
  const t0 = Date.now();
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new Error(
            `timed out after ${timeoutS} s without an exit code from the extension host ` +
              `(raise LINGER_EXTENSION_TEST_TIMEOUT_S, or rerun with LINGER_EXTENSION_TEST_VERBOSE=1).\n` +
              `code-server log tail:\n${tail(serverLog)}`,
          ),
        ),
      timeoutS * 1000,
    );
  });
  const run = main();
  run.catch(() => {
    /* reported through the race; after a timeout, the closing browser rejects it */
  });
  exitCode = await Promise.race([run, timeout]);
  if (!counts.seen) {
    console.error('extension-test: mocha reported no counts (the suite failed to load or crashed)');
    if (exitCode === 0) exitCode = 1;
  }
  console.log(`extension-test: extension host exited with ${exitCode} after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  if (verbose) console.error(`code-server log:\n${tail(serverLog, 200)}`);
} catch (err) {
  console.error(`extension-test: ${err instanceof Error ? err.message : String(err)}`);
  exitCode = 1;
} finally {
  clearTimeout(timer);
  if (!started && !verbose) {
    console.error(`extension-test: the suite never started; the workbench said:${preamble.length ? '' : ' nothing'}`);
    for (const [out, line] of preamble) out(line);
  }
  await cleanup();
}
console.log(`${counts.passes} passed, ${counts.failures} failed`);
process.exit(exitCode);
