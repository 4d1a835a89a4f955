// `linger run nb.ipynb`: runs a notebook's code cells in order with the notebook kernel, outside
// VS Code, and writes the outputs, as `jupyter nbconvert --execute` does. The input is never
// touched unless --inplace; a failing cell stops the run (unless allowErrors), and the notebook is
// still written with that cell's error.
import * as path from 'node:path';
import { NotARegularFileError, readRegularFile } from '../state/files';
import { writeFileAtomic } from '../state/safetensors';
import type { NbOutput } from './messages';
import { applyOutput, decodeNotebook, foreignKernel, NotebookFormatError, parseNotebook, serializeNotebook } from './nbformat';
import { KernelSession } from './session';

export interface RunOptions {
  /** write here (default: `<name>.out.ipynb` beside the input) */
  output?: string;
  inplace?: boolean;
  /** seconds a cell may run before it is interrupted (default: no limit) */
  timeoutS?: number;
  allowErrors?: boolean;
  log?: (line: string) => void;
  /** aborting interrupts the running cell (Ctrl-C) */
  signal?: AbortSignal;
  /** 'linger': run the cells with the Linger kernel even when the notebook names another language */
  kernel?: 'linger';
}

export interface CellFailure {
  cell: number;
  executionCount: number;
  ename: string;
  evalue: string;
  traceback: string[];
}

export interface RunResult {
  output: string;
  cells: number;
  errors: CellFailure[];
  /** ran to the end (every code cell, or every one until the first error without allowErrors) */
  ok: boolean;
  seconds: number;
}

export async function runNotebook(file: string, opts: RunOptions = {}): Promise<RunResult> {
  const t0 = performance.now();
  const log = opts.log ?? (() => undefined);
  let bytes: Buffer;
  try {
    bytes = readRegularFile(file, 'notebook'); // lstat first: a FIFO or a device never blocks the run
  } catch (e) {
    throw new NotebookFormatError(e instanceof NotARegularFileError ? e.message : `${file}: ${(e as Error).message}`);
  }
  const dropped: string[] = [];
  const nb = parseNotebook(decodeNotebook(bytes, file), file, dropped);
  const foreign = foreignKernel(nb);
  if (foreign && opts.kernel !== 'linger')
    throw new NotebookFormatError(
      `${file} is not a Linger notebook: ${foreign} (run it with its own kernel, or pass --kernel linger to run its cells as TypeScript)`,
    );
  if (dropped.length) log(`note: keys outside nbformat 4.5 are not written back: ${dropped.join(', ')}`);
  const output = opts.inplace
    ? file
    : (opts.output ?? path.join(path.dirname(file), `${path.basename(file).replace(/\.ipynb$/i, '')}.out.ipynb`));
  const dir = path.dirname(path.resolve(file));
  // cells resolve relative paths from the notebook's folder, as Jupyter does
  const cwd = process.cwd();
  process.chdir(dir);
  const session = new KernelSession({ notebookDir: dir, onLog: (l) => log(l.trimEnd()) });
  const errors: CellFailure[] = [];
  let ran = 0;
  const write = () => writeFileAtomic(path.resolve(cwd, output), Buffer.from(serializeNotebook(nb)));
  const onAbort = () => session.interrupt();
  opts.signal?.addEventListener('abort', onAbort);
  try {
    await session.start();
    const code = nb.cells.map((c, i) => [c, i] as const).filter(([c]) => c.cell_type === 'code');
    for (const c of nb.cells)
      if (c.cell_type === 'code') {
        c.outputs = [];
        c.execution_count = null;
      }
    for (const [cell, index] of code) {
      if (!cell.source.trim()) continue;
      const outputs: NbOutput[] = [];
      const ids = new Map<string, number>();
      cell.outputs = outputs;
      log(`cell ${index + 1}/${nb.cells.length}…`);
      let timer: NodeJS.Timeout | undefined;
      if (opts.timeoutS) timer = setTimeout(() => session.interrupt(), opts.timeoutS * 1000);
      const r = await session.execute(cell.source, { onOutput: (o) => applyOutput(outputs, o, ids) });
      clearTimeout(timer);
      cell.execution_count = r.executionCount;
      ran++;
      if (r.status === 'error') {
        const err = outputs.find((o) => o.output_type === 'error') as Extract<NbOutput, { output_type: 'error' }> | undefined;
        errors.push({
          cell: index + 1,
          executionCount: r.executionCount,
          ename: r.ename ?? err?.ename ?? 'Error',
          evalue: r.evalue ?? err?.evalue ?? '',
          traceback: err?.traceback ?? [],
        });
        if (!opts.allowErrors) break;
      }
      write();
    }
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    await session.dispose();
    process.chdir(cwd);
  }
  write();
  return { output, cells: ran, errors, ok: opts.allowErrors ? true : errors.length === 0, seconds: (performance.now() - t0) / 1000 };
}
