// `linger run` (a notebook, headless) and `linger new-notebook` (the experiment template).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { NotebookFormatError } from '../notebook/nbformat';
import { regularFileProblem } from '../state/files';
import { runNotebook } from '../notebook/run';
import { experimentNotebook } from '../notebook/template';
import { serializeNotebook } from '../notebook/nbformat';

export async function runRun(args: string[], stdout: (s: string) => void, stderr: (s: string) => void): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    strict: true,
    options: {
      inplace: { type: 'boolean' },
      output: { type: 'string', short: 'o' },
      timeout: { type: 'string' },
      'allow-errors': { type: 'boolean' },
      kernel: { type: 'string' },
    },
  });
  if (positionals.length !== 1) {
    stderr('usage: linger run <notebook.ipynb> [--inplace | -o out.ipynb] [--timeout S] [--allow-errors] [--kernel linger]');
    return 2;
  }
  if (values.kernel !== undefined && values.kernel !== 'linger') {
    stderr(`linger run: --kernel can only be linger (run other kernels' notebooks with Jupyter), got '${values.kernel}'`);
    return 2;
  }
  if (values.inplace && values.output) {
    stderr('linger run: --inplace and -o are exclusive');
    return 2;
  }
  const timeout = values.timeout === undefined ? undefined : Number(values.timeout);
  if (timeout !== undefined && !(timeout > 0)) {
    stderr(`linger run: --timeout expects seconds > 0, got '${values.timeout}'`);
    return 2;
  }
  const file = positionals[0];
  if (!fs.existsSync(file) && !isLink(file)) {
    stderr(`linger run: ${file} does not exist`);
    return 1;
  }
  // a FIFO, a device, a folder or a symlink loop: said before anything starts, never opened
  const special = regularFileProblem(file, 'notebook');
  if (special) {
    stderr(`linger run: ${file}: ${special}`);
    return 1;
  }
  const abort = new AbortController();
  let interrupts = 0;
  const onSigint = () => {
    if (++interrupts > 1) process.exit(130);
    stderr('interrupting the running cell (Ctrl-C again quits)…');
    abort.abort();
  };
  process.on('SIGINT', onSigint);
  try {
    const r = await runNotebook(file, {
      inplace: values.inplace,
      output: values.output,
      timeoutS: timeout,
      allowErrors: values['allow-errors'],
      log: stderr,
      signal: abort.signal,
      ...(values.kernel === 'linger' ? { kernel: 'linger' as const } : {}),
    });
    for (const e of r.errors) {
      stderr(`cell ${e.cell} (execution ${e.executionCount}) failed:`);
      for (const l of e.traceback.length ? e.traceback : [`${e.ename}: ${e.evalue}`]) stderr(`  ${l}`);
    }
    stdout(`ran ${r.cells} code cell${r.cells === 1 ? '' : 's'} in ${r.seconds.toFixed(1)} s; wrote ${r.output}`);
    return r.ok ? 0 : 1;
  } catch (e) {
    if (e instanceof NotebookFormatError) {
      stderr(`linger run: ${e.message} (the file was not changed)`);
      return 1;
    }
    throw e;
  } finally {
    process.off('SIGINT', onSigint);
  }
}

export function runNewNotebook(args: string[], stdout: (s: string) => void, stderr: (s: string) => void): number {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    strict: true,
    options: { quick: { type: 'boolean' }, full: { type: 'boolean' }, force: { type: 'boolean' } },
  });
  const file = positionals[0] ?? 'experiment.ipynb';
  if (fs.existsSync(file) && !values.force) {
    stderr(`linger new-notebook: ${file} exists (--force replaces it)`);
    return 1;
  }
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  fs.writeFileSync(file, serializeNotebook(experimentNotebook({ quick: !values.full })));
  stdout(`wrote ${file}: run it with \`linger run ${file}\` or open it in VS Code with the Linger (TypeScript) kernel`);
  return 0;
}

function isLink(file: string): boolean {
  try {
    return fs.lstatSync(file).isSymbolicLink();
  } catch {
    return false;
  }
}
