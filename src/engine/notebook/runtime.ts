// The kernel's thread: runs notebook cells one at a time, REPL-style, with the engine's whole
// public API preloaded as globals. It is a worker thread so that its owner (session.ts) stays
// responsive while a cell trains synchronously: outputs are posted from here as they happen, and
// an interrupt arrives as a shared-memory flag the engine reads at every step (interrupt.ts).
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { formatWithOptions } from 'node:util';
import * as vm from 'node:vm';
import { parentPort, workerData } from 'node:worker_threads';
import * as api from '../index';
import { clearInterrupt, InterruptedError, setInterruptBuffer } from '../interrupt';
import { Module } from '../nn/module';
import { moduleTree } from '../state/checkpoint';
import type { DataLoader } from '../train/data';
import { plannedWorkers, type EvalResult, type FitOptions } from '../train/loop';
import type { Optimizer } from '../train/optim';
import { CellSyntaxError, compileCell, CompiledCell } from './compile';
import { chart, mimeBundle, seriesChart } from './display';
import type { FromKernel, KernelEvent, ModelSnapshot, NbOutput, ToKernel } from './messages';

const port = parentPort!;
const post = (m: FromKernel) => port.postMessage(m);
const notebookDir: string = workerData?.notebookDir ?? process.cwd();
setInterruptBuffer(workerData?.interrupt as SharedArrayBuffer | undefined);

let exec = -1;
const emit = (output: NbOutput) => {
  if (exec >= 0) post({ type: 'output', exec, output });
};
const event = (e: KernelEvent) => post({ type: 'event', event: e });

// ---- console and stdio: streamed to the running cell --------------------------------------------
const stream =
  (name: 'stdout' | 'stderr') =>
  (...args: unknown[]) =>
    emit({ output_type: 'stream', name, text: `${formatWithOptions({ colors: false, depth: 4 }, ...args)}\n` });
const out = stream('stdout'),
  err = stream('stderr');
Object.assign(console, { log: out, info: out, debug: out, dir: out, table: out, trace: err, warn: err, error: err });
for (const [name, s] of [
  ['stdout', process.stdout],
  ['stderr', process.stderr],
] as const) {
  s.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    emit({ output_type: 'stream', name, text: typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8') });
    const cb = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
    cb?.();
    return true;
  }) as typeof s.write;
}

// ---- display ------------------------------------------------------------------------------------
let displays = 0;
/** A display output that can be replaced in place (Jupyter's DisplayHandle). */
export class DisplayHandle {
  constructor(readonly id: string) {}
  update(value: unknown): void {
    emit({ output_type: 'update_display_data', data: mimeBundle(value), metadata: {}, transient: { display_id: this.id } });
  }
}
function display(value: unknown): DisplayHandle {
  const h = new DisplayHandle(`linger-${process.pid}-${++displays}`);
  emit({ output_type: 'display_data', data: mimeBundle(value), metadata: {}, transient: { display_id: h.id } });
  return h;
}

// ---- the API, with the notebook's live outputs and the views' events ----------------------------
function nameOf(m: Module): string {
  for (const k of Object.keys(globalThis)) if ((globalThis as Record<string, unknown>)[k] === m) return k;
  return 'model';
}
function snapshot(m: Module, label: string): ModelSnapshot {
  return { label, stage: m.stage(), modules: moduleTree(m), text: String(m) };
}
function transformed<A extends unknown[]>(
  transform: 'traceLayers' | 'normalizeLayers' | 'init',
  fn: (m: Module, ...a: A) => Module,
  modelArg = 0,
) {
  return (...args: A & unknown[]): Module => {
    const m = args[modelArg] as Module;
    const before = m instanceof Module ? snapshot(m, '') : undefined;
    const r = (fn as (...a: unknown[]) => Module)(...args);
    if (before && m instanceof Module) {
      const name = nameOf(m);
      event({
        kind: 'model',
        name,
        transform,
        before: { ...before, label: `${name} before ${transform}` },
        after: snapshot(m, `${name} after ${transform}`),
      });
    }
    return r;
  };
}

const clock = (ms: number) => {
  const s = Math.max(0, Math.round(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
};

/** fit with one live progress line and a loss chart, both updated in place. */
function notebookFit(model: Module, loader: DataLoader, opt: Optimizer, opts: FitOptions = {}): number[] {
  const t0 = Date.now();
  const progress = display('fit: starting…');
  let chartHandle: DisplayHandle | undefined;
  const losses: number[] = [];
  let lastText = 0,
    lastChart = Date.now(),
    steps = 0,
    line = '';
  const drawChart = () => {
    if (losses.length < 2) return;
    const c = seriesChart({ loss: losses }, { title: 'training loss' });
    if (chartHandle) chartHandle.update(c);
    else chartHandle = display(c);
  };
  try {
    // every core by default, as the CLI's demo; a model class defined in a cell trains on one
    // thread (worker threads cannot build it) and the note says so
    const threads = plannedWorkers(model, { workers: opts.workers ?? 0, loss: opts.loss }).workers;
    const r = api.fit(model, loader, opt, {
      ...opts,
      workers: opts.workers ?? 0,
      onNote: (s) => {
        opts.onNote?.(s);
        display(`fit: ${s}`);
      },
      onStep: (p) => {
        opts.onStep?.(p);
        steps++;
        losses.push(p.loss);
        const now = Date.now();
        const left = ((p.epochs - p.epoch) * p.steps + (p.steps - p.step)) * p.msPerStep;
        line = `epoch ${p.epoch}/${p.epochs} · step ${p.step}/${p.steps} · loss ${p.loss.toFixed(4)} (epoch mean ${p.meanLoss.toFixed(4)}) · lr ${+p.lr.toPrecision(4)} · ${p.msPerStep.toFixed(1)} ms/step · ETA ${clock(left)}`;
        if (now - lastText >= 300) {
          progress.update(line);
          lastText = now;
        }
        if (now - lastChart >= 3000) {
          drawChart();
          lastChart = now;
        }
      },
    });
    progress.update(
      `fit: ${r.length} epoch${r.length === 1 ? '' : 's'}, ${steps} steps in ${((Date.now() - t0) / 1000).toFixed(1)} s on ${threads} thread${threads === 1 ? '' : 's'} · mean loss per epoch ${r.map((l) => l.toFixed(4)).join(', ')}`,
    );
    return r;
  } catch (e) {
    progress.update(`${line || 'fit'} · ${e instanceof InterruptedError ? 'interrupted' : 'stopped by an error'} after ${steps} steps`);
    throw e;
  } finally {
    drawChart();
  }
}

/** evaluate with a live batch count, then the accuracy. */
function notebookEvaluate(
  model: Module,
  loader: DataLoader,
  opts: { maxBatches?: number; onBatch?: (i: number, n: number) => void } = {},
): EvalResult {
  const h = display('evaluating…');
  let last = 0;
  const r = api.evaluate(model, loader, {
    ...opts,
    onBatch: (i, n) => {
      opts.onBatch?.(i, n);
      if (Date.now() - last >= 300) {
        h.update(`evaluating… batch ${i}/${n}`);
        last = Date.now();
      }
    },
  });
  h.update(
    `accuracy ${(r.accuracy * 100).toFixed(2)}% · loss ${r.loss.toFixed(4)} · ${r.count.toLocaleString('en-US')} samples (${model.stage()} stage)`,
  );
  return r;
}

async function notebookSave(...args: Parameters<typeof api.linger.save>): Promise<string> {
  // a relative file is the notebook's, as in Jupyter (a worker thread cannot chdir to its folder)
  if (typeof args[1] === 'string') args[1] = path.resolve(notebookDir, args[1]);
  const file = path.resolve(await api.linger.save(...args));
  const stage = args[0] instanceof Module ? args[0].stage() : api.stageOfDict(args[0]);
  const rel = path.relative(notebookDir, file);
  emit({
    output_type: 'display_data',
    metadata: {},
    data: {
      'text/plain': `saved the ${stage}-stage checkpoint ${file}`,
      'text/html': `saved the ${stage}-stage checkpoint <a href="${encodeURI(rel.split(path.sep).join('/'))}"><code>${rel.replace(/[&<>"]/g, '')}</code></a>`,
    },
  });
  event({ kind: 'saved', file, stage });
  return file;
}

const linger = {
  ...api.linger,
  traceLayers: transformed('traceLayers', api.linger.traceLayers, 1),
  normalizeLayers: transformed('normalizeLayers', api.linger.normalizeLayers),
  init: transformed('init', api.linger.init),
  save: notebookSave,
};

/** What cells see: the public API (with the notebook's fit/evaluate/linger), display and chart. */
const apiForCells: Record<string, unknown> = {
  ...api,
  linger,
  fit: notebookFit,
  evaluate: notebookEvaluate,
  display,
  chart,
  DisplayHandle,
};
const requireFromNotebook = createRequire(path.join(notebookDir, 'notebook.js'));
Object.assign(globalThis, apiForCells, {
  require: requireFromNotebook,
  async __lingerImport(spec: string): Promise<unknown> {
    if (spec === 'linger-studio' || spec === 'linger-studio/dist/engine.js') return apiForCells;
    const resolved = spec.startsWith('.') ? path.resolve(notebookDir, spec) : spec;
    try {
      return requireFromNotebook(resolved);
    } catch (e) {
      if ((e as { code?: string }).code !== 'ERR_REQUIRE_ESM') throw e;
      return import(resolved);
    }
  },
});

// ---- running cells ------------------------------------------------------------------------------
const compiled = new Map<string, CompiledCell>();
let interruptAwait: (() => void) | undefined;

/** Jupyter's traceback: the error, then where in the cells (their own lines), engine frames elided. */
function traceback(e: unknown): { ename: string; evalue: string; traceback: string[] } {
  if (e instanceof CellSyntaxError) {
    return {
      ename: 'SyntaxError',
      evalue: e.message,
      traceback: [
        `SyntaxError: ${e.message}`,
        `  at line ${e.line}, column ${e.column}`,
        `    ${e.lineText}`,
        `    ${' '.repeat(Math.max(0, e.column - 1))}^`,
      ],
    };
  }
  const err = e instanceof Error ? e : new Error(typeof e === 'string' ? e : formatWithOptions({}, e));
  const lines = [`${err.name}: ${err.message}`];
  let shownSource = false;
  for (const frame of (err.stack ?? '').split('\n').slice(1)) {
    const m = /^\s*at (?:(.*?) \()?(.+?):(\d+):(\d+)\)?$/.exec(frame);
    const cell = m && compiled.get(m[2]);
    if (!m || !cell) continue;
    const pos = cell.mapPosition(Number(m[3]), Number(m[4]));
    if (!pos) continue;
    const fn =
      m[1] && !/^(async )?(eval|<anonymous>)$/.test(m[1]) && !m[1].startsWith('Object.') ? ` in ${m[1].replace(/^async /, '')}` : '';
    lines.push(`  at ${m[2]}, line ${pos.line}, column ${pos.column}${fn}`);
    if (!shownSource) {
      const src = (cell as CompiledCell & { source?: string }).source?.split('\n')[pos.line - 1];
      if (src !== undefined) lines.push(`    ${src}`, `    ${' '.repeat(Math.max(0, pos.column - 1))}^`);
      shownSource = true;
    }
  }
  return { ename: err.name, evalue: err.message, traceback: lines };
}

async function execute(m: Extract<ToKernel, { type: 'execute' }>): Promise<void> {
  exec = m.exec;
  clearInterrupt();
  for (const text of late.splice(0)) emit({ output_type: 'stream', name: 'stderr', text });
  try {
    const cell = Object.assign(compileCell(m.source, m.cell), { source: m.source });
    compiled.set(m.cell, cell);
    const interrupted = new Promise<never>((_, reject) => {
      interruptAwait = () => reject(new InterruptedError('an await'));
    });
    interrupted.catch(() => undefined);
    const value = await Promise.race([vm.runInThisContext(cell.code, { filename: m.cell }) as Promise<unknown>, interrupted]);
    if (value !== undefined && !(value instanceof DisplayHandle))
      emit({ output_type: 'execute_result', data: mimeBundle(value), metadata: {}, execution_count: m.executionCount });
    post({ type: 'done', exec: m.exec, status: 'ok' });
  } catch (e) {
    const tb = traceback(e);
    emit({ output_type: 'error', ...tb });
    post({ type: 'done', exec: m.exec, status: 'error', ename: tb.ename, evalue: tb.evalue });
  } finally {
    interruptAwait = undefined;
    exec = -1;
  }
}

async function request(m: Extract<ToKernel, { type: 'request' }>): Promise<unknown> {
  const modules = () => Object.entries(globalThis).filter(([, v]) => v instanceof Module) as [string, Module][];
  if (m.method === 'listModules') {
    return modules().map(([name, v]) => ({
      name,
      type: v.typeName(),
      stage: v.stage(),
      parameters: v.parameters().reduce((a, p) => a + p.size, 0),
    }));
  }
  const target = modules().find(([n]) => n === m.name)?.[1];
  if (!target) throw new Error(`the kernel has no model named ${m.name}`);
  const sd = await api.linger.load(path.resolve(notebookDir, m.file));
  const before = snapshot(target, `${m.name} before loading`);
  const r = target.loadStateDict(sd);
  event({
    kind: 'model',
    name: m.name,
    transform: 'loadStateDict',
    before,
    after: snapshot(target, `${m.name} (loaded ${path.basename(m.file)})`),
  });
  return { stage: target.stage(), file: m.file, ...r };
}

// An error thrown by a callback a cell left behind (a timer, an unhandled rejection) must not end
// the kernel thread (its variables would be lost): it goes to the running cell's stderr, or to the
// next cell's when none runs.
const late: string[] = [];
const background = (e: unknown) => {
  const tb = traceback(e);
  const text = `an error was thrown by code a cell left running (a callback, a promise nobody awaited):\n${tb.traceback.join('\n')}\n`;
  if (exec >= 0) emit({ output_type: 'stream', name: 'stderr', text });
  else late.push(text);
};
/** Ours only: Emscripten's runtime (the wasm backend) installs handlers that rethrow, ending the thread. */
function catchBackgroundErrors(): void {
  for (const event of ['uncaughtException', 'unhandledRejection'] as const) {
    process.removeAllListeners(event);
    process.on(event, background);
  }
}
catchBackgroundErrors();

let queue = Promise.resolve();
port.on('message', (m: ToKernel) => {
  if (m.type === 'interrupt') {
    interruptAwait?.();
    return;
  }
  queue = queue.then(async () => {
    if (m.type === 'execute') return execute(m);
    try {
      post({ type: 'response', id: m.id, result: await request(m) });
    } catch (e) {
      post({ type: 'response', id: m.id, error: (e as Error).message });
    }
  });
});

void api.initBackend().then((backend) => {
  catchBackgroundErrors();
  post({ type: 'ready', backend });
});
