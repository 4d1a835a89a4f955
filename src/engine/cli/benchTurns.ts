// Taking turns (docs/benchmarks.md): every run of a comparison, the engine's and the PyTorch peer's
// alike, times a block of steps in its turn, so a machine whose load changes over the minutes of
// a bench slows them all alike, and each ratio compares steps timed in the same minutes.
import { spawn, ChildProcessWithoutNullStreams } from 'node:child_process';
import * as readline from 'node:readline';

/** A median and the spread around it: the 25th and 75th percentiles of the timed steps. */
export interface Timing {
  ms: number;
  p25: number;
  p75: number;
  steps: number;
}

function quantile(sorted: number[], q: number): number {
  const i = (sorted.length - 1) * q;
  const lo = Math.floor(i);
  return lo === i ? sorted[lo] : sorted[lo] + (sorted[lo + 1] - sorted[lo]) * (i - lo);
}
export function timing(xs: number[]): Timing {
  const s = [...xs].sort((a, b) => a - b);
  return { ms: quantile(s, 0.5), p25: quantile(s, 0.25), p75: quantile(s, 0.75), steps: s.length };
}
/** "44.0 ms (42.1–47.3)" */
export const fmt = (t: Timing): string => `${t.ms.toFixed(1)} ms (${t.p25.toFixed(1)}–${t.p75.toFixed(1)})`;

/** One side of a comparison: runs `n` steps and returns each one's ms. */
export interface TurnRun {
  block(n: number): number[] | Promise<number[]>;
  /** ahead of each of this run's turns (e.g. a switch only this run sets) */
  before?(): void;
}

/** An engine run: `step` timed in this process. */
export function engineRun(step: () => void, before?: () => void): TurnRun {
  return {
    block: (n) => {
      const ts: number[] = [];
      for (let i = 0; i < n; i++) {
        const t0 = performance.now();
        step();
        ts.push(performance.now() - t0);
      }
      return ts;
    },
    ...(before ? { before } : {}),
  };
}

/**
 * The runs take turns: in each, `settle` untimed steps (a thread that slept while the others ran
 * is slow to start again), then `block` timed ones; the first `warmup` timed steps of each run are
 * dropped. Returns each run's timing of `steps` steps.
 */
export async function takeTurns(
  runs: TurnRun[],
  o: { steps: number; warmup: number },
  turn: { block: number; settle: number } = { block: 5, settle: 0 },
): Promise<Timing[]> {
  const times = runs.map(() => [] as number[]);
  for (let done = 0; done < o.warmup + o.steps; done += turn.block) {
    const n = Math.min(turn.block, o.warmup + o.steps - done);
    for (const [k, r] of runs.entries()) {
      r.before?.();
      const ts = await r.block(turn.settle + n);
      ts.slice(turn.settle).forEach((t, i) => {
        if (done + i >= o.warmup) times[k].push(t);
      });
    }
  }
  return times.map(timing);
}

/** The PyTorch peer (scripts/bench/torch_peer.py --serve): one process, asked for blocks of steps. */
export class TorchPeer {
  private readonly lines: AsyncIterator<string>;
  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    readonly version: string,
    lines: AsyncIterator<string>,
  ) {
    this.lines = lines;
  }
  private stderr = '';

  static async start(python: string, script: string, batch: number): Promise<TorchPeer> {
    const child = spawn(python, [script, '--serve', '--batch', String(batch)], { stdio: ['pipe', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const lines = readline.createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const first = await lines.next();
    if (first.done) throw new Error(`the PyTorch peer did not start: ${err.trim().split('\n').slice(-3).join(' ')}`);
    const peer = new TorchPeer(child, (JSON.parse(first.value) as { torch: string }).torch, lines);
    child.stderr.on('data', (d: Buffer) => (peer.stderr += d.toString()));
    return peer;
  }

  /** n training steps of the peer's model, each one's ms */
  async steps(model: 'cnn' | 'gru', mode: 'float' | 'qat', threads: number, n: number): Promise<number[]> {
    this.child.stdin.write(JSON.stringify({ model, mode, threads, steps: n }) + '\n');
    const r = await this.lines.next();
    if (r.done) throw new Error(`the PyTorch peer ended: ${this.stderr.trim().split('\n').slice(-3).join(' ')}`);
    const j = JSON.parse(r.value) as { times?: number[]; error?: string };
    if (!j.times) throw new Error(`the PyTorch peer: ${j.error}`);
    return j.times;
  }
  run(model: 'cnn' | 'gru', mode: 'float' | 'qat', threads: number): TurnRun {
    return { block: (n) => this.steps(model, mode, threads, n) };
  }
  close(): void {
    this.child.stdin.end();
    this.child.kill();
  }
}
