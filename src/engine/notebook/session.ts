// A notebook kernel: owns the thread that runs cells (runtime.ts), queues executions, turns chart
// specs into SVG (on this thread, which stays free while a cell trains), interrupts, restarts and
// notices a thread that died. The extension's kernel process (kernelMain.ts) and `linger run`
// (run.ts) both drive one of these.
import * as os from 'node:os';
import * as path from 'node:path';
import type { Worker } from 'node:worker_threads';
import { startThread } from '../host/thread';
import { requestInterrupt } from '../interrupt';
import { CHART_MIME, MimeBundle } from './display';
import { renderChartSvg } from '../charts';
import type { FromKernel, KernelEvent, ModuleVariable, NbOutput, ToKernel } from './messages';

export interface ExecuteResult {
  status: 'ok' | 'error';
  executionCount: number;
  ename?: string;
  evalue?: string;
  /** the kernel thread was restarted (or died) during this cell: every variable is gone */
  restarted?: boolean;
}

export interface SessionOptions {
  /** relative imports and `require` resolve from here */
  notebookDir: string;
  onEvent?: (e: KernelEvent) => void;
  /** the kernel thread's own stderr (not a cell's output) */
  onLog?: (line: string) => void;
  /** how long an interrupt may take to reach a step before the kernel is restarted (default 3 s) */
  interruptGraceMs?: number;
  /** the kernel thread's JavaScript heap limit in MB (default: V8's); a cell that fills it ends as out of memory */
  heapLimitMb?: number;
}

/** Memory as the process sees it when a cell is stuck: what the message about it is based on. */
export interface MemorySnapshot {
  rss: number;
  total: number;
  free: number;
}

const gib = (n: number) => `${(n / 2 ** 30).toFixed(1)} GiB`;

/**
 * Why a cell did not reach an interruptible step in time: out of memory when the process holds
 * most of the machine's memory or the machine has almost none left (a cell allocating without
 * end thrashes there, inside the engine), otherwise code that never reaches a step.
 */
export function stuckCellMessage(
  graceMs: number,
  m: MemorySnapshot = { rss: process.memoryUsage().rss, total: os.totalmem(), free: os.freemem() },
): string {
  const secs = (graceMs / 1000).toFixed(0);
  if (m.rss > 0.8 * m.total || m.free < 0.05 * m.total) {
    return (
      `the cell ran out of memory: the kernel holds ${gib(m.rss)} of the machine's ${gib(m.total)} (${gib(m.free)} free) and did not ` +
      `answer the interrupt within ${secs} s, so the kernel was restarted: every variable was lost (keep fewer tensors alive, or use smaller ones)`
    );
  }
  return (
    `the cell did not reach an interruptible step within ${secs} s of the interrupt (a module call, an optimizer step or a DataLoader batch; ` +
    'a loop that never reaches one, like `while (true) {}`), so the kernel was restarted: every variable was lost'
  );
}

interface Running {
  exec: number;
  onOutput: (o: NbOutput) => void;
  resolve: (r: ExecuteResult) => void;
  executionCount: number;
  /** outputs go out in order, each after its chart is rendered */
  chain: Promise<void>;
  /** the kernel has said the cell is done: only its outputs' charts are still being rendered */
  ended?: boolean;
  settled?: boolean;
}

/** Replaces a chart spec in a bundle by its SVG (the spec is not kept: VS Code has no Vega renderer built in). */
export async function renderCharts(data: MimeBundle): Promise<MimeBundle> {
  const spec = data[CHART_MIME] as Record<string, unknown> | undefined;
  if (!spec) return data;
  const { [CHART_MIME]: _, ...rest } = data;
  try {
    return { 'image/svg+xml': await renderChartSvg(spec), ...rest };
  } catch (e) {
    return { ...rest, 'text/plain': `${String(rest['text/plain'] ?? '')}\n(the chart could not be drawn: ${(e as Error).message})` };
  }
}

export class KernelSession {
  private worker: Worker | undefined;
  private ready: Promise<string> | undefined;
  private interruptFlag = new SharedArrayBuffer(4);
  private running: Running | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private execs = 0;
  private requests = 0;
  private pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private graceTimer: NodeJS.Timeout | undefined;
  /** Jupyter's execution count: cells run since the last (re)start */
  executionCount = 0;
  backend: string | undefined;

  constructor(private readonly opts: SessionOptions) {}

  /** Starts the kernel thread (if none) and waits until the engine's backend is up. */
  start(): Promise<string> {
    if (this.ready) return this.ready;
    this.interruptFlag = new SharedArrayBuffer(4);
    const w = startThread(
      'kernelWorker.js',
      path.join(__dirname, 'runtime.ts'),
      { notebookDir: this.opts.notebookDir, interrupt: this.interruptFlag },
      this.opts.heapLimitMb ? { resourceLimits: { maxOldGenerationSizeMb: this.opts.heapLimitMb } } : {},
    );
    this.worker = w;
    w.stdout.on('data', (d: Buffer) => this.opts.onLog?.(d.toString()));
    w.stderr.on('data', (d: Buffer) => this.opts.onLog?.(d.toString()));
    this.ready = new Promise<string>((resolve, reject) => {
      w.on('message', (m: FromKernel) => {
        if (m.type === 'ready') {
          this.backend = m.backend;
          resolve(m.backend);
        } else this.receive(m);
      });
      w.on('error', (e) => {
        if ((e as NodeJS.ErrnoException).code === 'ERR_WORKER_OUT_OF_MEMORY') {
          // V8 ended the thread at its heap limit: say so, not "the kernel thread ended (exit code 1)"
          if (this.worker === w)
            this.died(
              'the kernel ran out of memory',
              "the cell ran out of memory (the kernel's JavaScript heap is full), so the kernel was restarted: every variable was lost (keep fewer objects alive, or use smaller ones)",
            );
        } else {
          this.opts.onLog?.(`kernel thread error: ${e.stack ?? e.message}`);
        }
        reject(e);
      });
      w.on('exit', (code) => {
        reject(new Error(`the kernel thread ended while starting (exit code ${code})`));
        if (this.worker === w) this.died(`the kernel thread ended (exit code ${code})`);
      });
    });
    return this.ready;
  }

  private receive(m: FromKernel): void {
    const r = this.running;
    if (m.type === 'output' && r && m.exec === r.exec) {
      const o = m.output;
      r.chain = r.chain.then(async () => {
        if (o.output_type === 'display_data' || o.output_type === 'update_display_data' || o.output_type === 'execute_result') {
          r.onOutput({ ...o, data: await renderCharts(o.data) } as NbOutput);
        } else r.onOutput(o);
      });
    } else if (m.type === 'done' && r && m.exec === r.exec) {
      // the cell has stopped: an interrupt's grace period ends here, not after the charts are drawn
      r.ended = true;
      clearTimeout(this.graceTimer);
      this.graceTimer = undefined;
      void r.chain.then(() => this.finish(r, { status: m.status, executionCount: r.executionCount, ename: m.ename, evalue: m.evalue }));
    } else if (m.type === 'event') {
      this.opts.onEvent?.(m.event);
    } else if (m.type === 'response') {
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (m.error !== undefined) p?.reject(new Error(m.error));
      else p?.resolve(m.result);
    }
  }

  private finish(r: Running, result: ExecuteResult): void {
    if (r.settled) return;
    r.settled = true;
    if (this.running === r) {
      clearTimeout(this.graceTimer);
      this.graceTimer = undefined;
      this.running = undefined;
    }
    r.resolve(result);
  }

  /** The thread is gone: the running cell fails with why, pending requests too; the next run starts afresh. */
  private died(why: string, output?: string): void {
    this.worker = undefined;
    this.ready = undefined;
    // the next cell runs in a fresh kernel, which counts from 1 (as restart() does)
    this.executionCount = 0;
    for (const p of this.pending.values()) p.reject(new Error(`${why}: the kernel's state was lost`));
    this.pending.clear();
    const r = this.running;
    // a cell that already ended keeps its result (its outputs are still being rendered)
    if (r && !r.ended) {
      const evalue = output ?? `${why}; every variable was lost, and the next cell runs in a fresh kernel`;
      void r.chain.then(() => {
        r.onOutput({ output_type: 'error', ename: 'KernelRestarted', evalue, traceback: [`KernelRestarted: ${evalue}`] });
        this.finish(r, { status: 'error', executionCount: r.executionCount, ename: 'KernelRestarted', evalue, restarted: true });
      });
    }
  }

  /** Runs a cell after the ones already queued; its outputs arrive through `onOutput` as they happen. */
  execute(source: string, opts: { cell?: string; onOutput: (o: NbOutput) => void }): Promise<ExecuteResult> {
    const run = async (): Promise<ExecuteResult> => {
      await this.start();
      const executionCount = ++this.executionCount;
      const exec = ++this.execs;
      return new Promise<ExecuteResult>((resolve) => {
        this.running = { exec, onOutput: opts.onOutput, resolve, executionCount, chain: Promise.resolve() };
        this.send({ type: 'execute', exec, source, cell: opts.cell ?? `Cell [${executionCount}]`, executionCount });
      });
    };
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => undefined);
    return p;
  }

  /** True while a cell runs. */
  get busy(): boolean {
    return !!this.running;
  }

  /**
   * Stops the running cell at its next step (InterruptedError in the cell; variables kept). A cell
   * that reaches no step within the grace period (`while (true) {}`) ends with the kernel thread,
   * which loses the state.
   */
  interrupt(): void {
    if (!this.running || this.running.ended || this.graceTimer) return;
    requestInterrupt(this.interruptFlag);
    this.send({ type: 'interrupt' });
    const grace = this.opts.interruptGraceMs ?? 3000;
    this.graceTimer = setTimeout(() => {
      this.graceTimer = undefined;
      if (!this.running || this.running.ended) return;
      this.kill(stuckCellMessage(grace));
    }, grace);
  }

  private kill(why: string): void {
    const w = this.worker;
    this.died('the kernel was restarted', why);
    void w?.terminate();
  }

  /** Ends the kernel thread and everything it held; the next cell starts a fresh one (count from 1). */
  async restart(): Promise<void> {
    const w = this.worker;
    if (this.running) this.died('the kernel was restarted', 'the kernel was restarted while this cell ran; every variable was lost');
    this.worker = undefined;
    this.ready = undefined;
    this.executionCount = 0;
    await w?.terminate();
    await this.start();
  }

  /** The kernel's variables that hold an nn.Module (for "Load into Notebook Model"). */
  listModules(): Promise<ModuleVariable[]> {
    return this.call({ method: 'listModules' }) as Promise<ModuleVariable[]>;
  }

  /** Loads a checkpoint into one of those, under the stage rule (a refusal changes nothing). */
  loadCheckpoint(name: string, file: string): Promise<{ stage: string; missingKeys: string[]; unexpectedKeys: string[] }> {
    return this.call({ method: 'loadCheckpoint', name, file }) as Promise<{
      stage: string;
      missingKeys: string[];
      unexpectedKeys: string[];
    }>;
  }

  private async call(m: { method: 'listModules' } | { method: 'loadCheckpoint'; name: string; file: string }): Promise<unknown> {
    if (this.running) throw new Error('the kernel is running a cell; try again when it has finished');
    await this.start();
    const id = ++this.requests;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.send({ type: 'request', id, ...m } as ToKernel);
    });
  }

  private send(m: ToKernel): void {
    this.worker?.postMessage(m);
  }

  async dispose(): Promise<void> {
    const w = this.worker;
    this.died('the kernel was shut down');
    await w?.terminate();
  }
}
