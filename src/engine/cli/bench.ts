import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initBackend } from '../backend/select';
import * as F from '../nn/functional';
import { manualSeed } from '../random';
import { rand, randn, tensor } from '../tensor';
import { setReleasing } from '../memory';
import { DEMO_INPUT_SHAPE, DEMO_RECIPE, DemoCNN } from '../train/demoCnn';
import { DemoGRU } from '../train/demoGru';
import { init } from '../linger/init';
import { benchAnalyzer } from '../analysis/bench';
import { normalizeLayers, traceLayers } from '../linger/transforms';
import { SGD } from '../train/optim';
import { DataLoader, fashionMnist } from '../train/data';
import { fit } from '../train/loop';
import { DataParallel, defaultWorkers } from '../parallel/dataParallel';
import { Tensor } from '../tensor';

export interface BenchOptions {
  steps: number;
  warmup: number;
  batch: number;
  torch: boolean;
  python: string;
  /** the N of "N workers / N threads" (default: one per core) */
  workers?: number;
  /** also time one real epoch of the demo's float training on N workers */
  demoEpoch?: boolean;
}

export interface BenchRow {
  name: string;
  ms: number;
}
export interface TorchTiming {
  version: string;
  ms: number;
  error?: string;
}
/** One training step's median ms: the engine on 1 and N threads, PyTorch on 1 and N threads. */
export interface PeerTimes {
  engine1_ms: number;
  engineN_ms: number;
  torch1_ms: number | null;
  torchN_ms: number | null;
}
export interface BenchResult {
  cpu: string;
  cores: number;
  backend: string;
  /** N: engine workers and PyTorch threads of the *N columns */
  workers: number;
  batch: number;
  steps: number;
  float: PeerTimes;
  /** the engine's fixed stage (QAT) against PyTorch's eager int8 QAT */
  fixed: PeerTimes;
  /** engine, one thread, every stage */
  stages: Record<BenchStage, number>;
  torchVersion?: string;
  /** the demo's float training, one epoch of Fashion-MNIST on N workers */
  demoEpoch?: { workers: number; steps: number; seconds: number; msPerStep: number };
  /** the sequence demo (DemoGRU) on one thread: float and fixed (GRUInt QAT) steps, PyTorch's float step */
  sequence?: { float_ms: number; fixed_ms: number; torch_float_ms: number | null };
  rows: BenchRow[];
  ratios: Record<string, number>;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export type BenchStage = 'float' | 'traced' | 'normalized' | 'fixed';
export const BENCH_STAGES: BenchStage[] = ['float', 'traced', 'normalized', 'fixed'];

function stageModel(stage: BenchStage): { model: DemoCNN; opt: SGD } {
  manualSeed(0);
  const model = new DemoCNN();
  if (stage !== 'float') traceLayers(model, model, randn(DEMO_INPUT_SHAPE));
  if (stage === 'normalized' || stage === 'fixed') normalizeLayers(model);
  if (stage === 'fixed') init(model);
  return { model, opt: new SGD(model.parameters(), { lr: 0.05, momentum: 0.9 }) };
}

interface BenchRun {
  step: (x: Tensor, y: Tensor) => void;
  before?: () => void;
}
const plainRun = ({ model, opt }: { model: DemoCNN; opt: SGD }): BenchRun => ({
  step: (x, y) => {
    opt.step(() => F.crossEntropy(model(x), y));
  },
});

/**
 * Median ms of a training step for each run, the runs taking turns in blocks of five steps, so a
 * busy machine slows them alike and the ratios stay meaningful (alternating every step thrashes
 * caches). `before` runs ahead of each of a run's blocks (e.g. a switch only that run sets).
 */
function interleaved(
  o: { steps: number; warmup: number; batch: number },
  runs: BenchRun[],
  x: Tensor,
  y: Tensor,
  turn: { block: number; settle: number } = { block: 5, settle: 0 },
): number[] {
  const times = runs.map(() => [] as number[]);
  // each turn: `settle` untimed steps (a thread that slept while the others ran is slow to start
  // again), then `block` timed ones
  const { block, settle } = turn;
  try {
    for (let done = 0; done < o.warmup + o.steps; done += block) {
      runs.forEach((r, k) => {
        r.before?.();
        for (let i = 0; i < settle; i++) r.step(x, y);
        for (let i = done; i < Math.min(done + block, o.warmup + o.steps); i++) {
          const t0 = performance.now();
          r.step(x, y);
          if (i >= o.warmup) times[k].push(performance.now() - t0);
        }
      });
    }
  } finally {
    setReleasing(true);
  }
  return times.map(median);
}

function benchBatch(n: number): { x: Tensor; y: Tensor } {
  return {
    x: rand([n, 1, 28, 28]),
    y: tensor(
      Int32Array.from({ length: n }, (_, i) => i % 10),
      [n],
      'int32',
    ),
  };
}

/**
 * Median ms of a demo-CNN training step (SGD lr 0.05, momentum 0.9) after warm-up: every stage on
 * one thread — float; traced (Conv+BN fused: fused forward, unfused backward); normalized (traced +
 * normalizeLayers' clamps); fixed (traced + normalized + init: QAT) — taking turns; then float and
 * fixed each on 1 thread and on `workers` threads (data-parallel), the two taking turns (a pair
 * shares the machine's state better than six runs would).
 */
export function timeTrainingSteps(o: { steps: number; warmup: number; batch: number; workers: number }): {
  one: Record<BenchStage, number>;
  pairs: Record<'float' | 'fixed', { one: number; many: number }>;
} {
  const { x, y } = benchBatch(o.batch);
  try {
    const ms = interleaved(
      o,
      BENCH_STAGES.map((s) => plainRun(stageModel(s))),
      x,
      y,
    );
    const pair = (stage: BenchStage) => {
      const { model, opt } = stageModel(stage);
      const dp = DataParallel.start(model, opt, { workers: o.workers, sample: { x, y }, maxRows: o.batch });
      try {
        const [one, many] = interleaved(
          o,
          [
            plainRun(stageModel(stage)),
            {
              step: (bx, by) => {
                dp.step(bx, by);
              },
            },
          ],
          x,
          y,
          { block: 10, settle: 2 },
        );
        return { one, many };
      } finally {
        dp.close();
      }
    };
    return {
      one: Object.fromEntries(BENCH_STAGES.map((s, i) => [s, ms[i]])) as Record<BenchStage, number>,
      pairs: { float: pair('float'), fixed: pair('fixed') },
    };
  } finally {
    x.dispose();
    y.dispose();
  }
}

/**
 * What the release mechanism (memory.ts: a scope per module call, tracking of engine tensors)
 * costs a training step: the same stage with it on and off, in turns, in one process.
 */
export function timeReleaseCost(o: { steps: number; warmup: number; batch: number }, stage: BenchStage): { on: number; off: number } {
  const { x, y } = benchBatch(o.batch);
  const [on, off] = interleaved(
    o,
    [
      { ...plainRun(stageModel(stage)), before: () => setReleasing(true) },
      { ...plainRun(stageModel(stage)), before: () => setReleasing(false) },
    ],
    x,
    y,
  );
  return { on, off };
}

/** The sequence demo's float step and its fixed-stage (QAT, GRUInt) step on one thread, taking turns. */
export function timeSequenceSteps(o: { steps: number; warmup: number; batch: number }): { float: number; fixed: number } {
  const { x, y } = benchBatch(o.batch);
  const make = (fixed: boolean) => {
    manualSeed(0);
    const model = new DemoGRU();
    if (fixed) {
      traceLayers(model, model, randn(DEMO_INPUT_SHAPE));
      normalizeLayers(model);
      init(model);
    }
    const opt = new SGD(model.parameters(), { lr: 0.05, momentum: 0.9 });
    return {
      step: (bx: Tensor, by: Tensor) => {
        opt.step(() => F.crossEntropy(model(bx), by));
      },
    };
  };
  try {
    const [float, fixed] = interleaved(o, [make(false), make(true)], x, y);
    return { float, fixed };
  } finally {
    x.dispose();
    y.dispose();
  }
}

/** One epoch of the demo's float training (Fashion-MNIST, batch 64) on `workers` threads. */
export function timeDemoEpoch(workers: number): { workers: number; steps: number; seconds: number; msPerStep: number } {
  manualSeed(0);
  const ds = fashionMnist();
  const model = new DemoCNN();
  const opt = new SGD(model.parameters(), { lr: DEMO_RECIPE.lr, momentum: DEMO_RECIPE.momentum });
  const loader = new DataLoader(ds.train, { batchSize: DEMO_RECIPE.batchSize, shuffle: true, seed: 0 });
  const t0 = performance.now();
  fit(model, loader, opt, { workers });
  const seconds = (performance.now() - t0) / 1000;
  return { workers, steps: loader.length, seconds, msPerStep: (seconds * 1000) / loader.length };
}

function torchPeerScript(): string {
  // dist/cli.js → ../scripts; src/engine/cli/bench.ts → ../../../scripts
  for (const up of ['..', path.join('..', '..', '..')]) {
    const p = path.resolve(__dirname, up, 'scripts', 'bench', 'torch_peer.py');
    if (fs.existsSync(p)) return p;
  }
  throw new Error('scripts/bench/torch_peer.py not found next to the CLI');
}

/** Runs the PyTorch peer on `threads` threads (the caller checked that torch imports). */
export function timeTorchStep(o: BenchOptions, threads: number, mode: 'float' | 'qat', model: 'cnn' | 'gru' = 'cnn'): TorchTiming {
  const r = spawnSync(
    o.python,
    [
      torchPeerScript(),
      '--threads',
      String(threads),
      '--steps',
      String(o.steps),
      '--warmup',
      String(o.warmup),
      '--batch',
      String(o.batch),
      '--mode',
      mode,
      '--model',
      model,
    ],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) return { version: '?', ms: NaN, error: (r.stderr || '').trim().split('\n').slice(-3).join(' ') };
  const j = JSON.parse(r.stdout.trim().split('\n').pop()!) as { torch: string; median_ms: number };
  return { version: j.torch, ms: j.median_ms };
}

export async function runBench(o: BenchOptions, log: (s: string) => void): Promise<BenchResult> {
  const backend = await initBackend();
  const workers = o.workers ?? defaultWorkers();
  const cpu = os.cpus()[0]?.model ?? 'unknown';
  const cores = os.cpus().length;
  log(`CPU: ${cpu} (${cores} cores)`);
  log(
    `backend: ${backend}; engine on 1 thread and on ${workers} (data-parallel workers), PyTorch on 1 and ${workers} threads; ` +
      `batch ${o.batch}, median of ${o.steps} steps after ${o.warmup} warm-up`,
  );
  const rows: BenchRow[] = [];
  const names: Record<BenchStage, string> = {
    float: 'float step',
    traced: 'traced step (Conv+BN fused)',
    normalized: 'traced + normalized step',
    fixed: 'fixed-point QAT step',
  };
  // PyTorch runs before and after the engine; the faster of its two medians is the baseline
  const hasTorch = o.torch && spawnSync(o.python, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;
  if (o.torch && !hasTorch) log(`PyTorch peer skipped: ${o.python} has no torch (apt-get install python3-torch)`);
  const peer = (mode: 'float' | 'qat', threads: number) => (hasTorch ? timeTorchStep(o, threads, mode) : undefined);
  const modes = [
    ['float', 1],
    ['float', workers],
    ['qat', 1],
    ['qat', workers],
  ] as const;
  const before = modes.map(([m, t]) => peer(m, t));
  const gruBefore = hasTorch ? timeTorchStep(o, 1, 'float', 'gru') : undefined;

  const timed = timeTrainingSteps({ ...o, workers });
  for (const stage of BENCH_STAGES) {
    rows.push({ name: `${names[stage]}, 1 thread`, ms: timed.one[stage] });
    log(`engine ${names[stage]}, 1 thread: ${timed.one[stage].toFixed(1)} ms`);
  }
  for (const stage of ['float', 'fixed'] as const) {
    const p = timed.pairs[stage];
    rows.push({ name: `${names[stage]}: 1 thread / ${workers} workers, taking turns`, ms: p.many });
    log(
      `engine ${names[stage]}, 1 thread and ${workers} workers taking turns: ${p.one.toFixed(1)} ms → ${p.many.toFixed(1)} ms (${(p.one / p.many).toFixed(2)}× faster)`,
    );
  }
  const ms = timed.one;
  const ratios: Record<string, number> = {
    fusionOverhead: ms.traced / ms.float - 1,
    normalizedOverhead: ms.normalized / ms.float - 1,
    fixedOverFloat: ms.fixed / ms.float,
    normalizedOverFloat: ms.normalized / ms.float,
    speedupFloat: timed.pairs.float.one / timed.pairs.float.many,
    speedupFixed: timed.pairs.fixed.one / timed.pairs.fixed.many,
  };
  log(
    `fixed-point QAT step / float step (1 thread): ${ratios.fixedOverFloat.toFixed(2)}× (goal ≤ 1.25×); ` +
      `normalized / float: ${ratios.normalizedOverFloat.toFixed(2)}× (goal ≤ 1.10×)`,
  );
  // a cost of a few percent needs more steps than the stage table: 40-step runs scattered ±5%
  const long = { ...o, steps: Math.max(o.steps, Math.min(150, 5 * o.steps)) };
  for (const stage of ['float', 'fixed'] as const) {
    const c = timeReleaseCost(long, stage);
    ratios[`releaseCost_${stage}`] = c.on / c.off - 1;
    rows.push({ name: `${names[stage]} without the release mechanism`, ms: c.off });
    log(
      `memory release mechanism, ${stage} step: ${c.on.toFixed(1)} ms with, ${c.off.toFixed(1)} ms without → ` +
        `${(ratios[`releaseCost_${stage}`] * 100).toFixed(1)}% (goal ≤ 2%)`,
    );
  }
  const an = await benchAnalyzer();
  rows.push({ name: `load-order analysis of a ${an.lines}-line Python script`, ms: an.ms });
  log(`load-order analyzer: ${an.lines} lines in ${an.ms.toFixed(1)} ms (target < 50 ms)`);

  let demoEpoch: BenchResult['demoEpoch'];
  if (o.demoEpoch !== false) {
    demoEpoch = timeDemoEpoch(workers);
    log(
      `demo float training, one epoch of Fashion-MNIST on ${workers} workers: ${demoEpoch.seconds.toFixed(1)} s (${demoEpoch.steps} steps, ${demoEpoch.msPerStep.toFixed(1)} ms/step with data loading)`,
    );
  }

  const seq = timeSequenceSteps(o);
  log(
    `sequence demo (DemoGRU, 28 steps), 1 thread: float ${seq.float.toFixed(1)} ms, fixed-point QAT (GRUInt) ${seq.fixed.toFixed(1)} ms ` +
      `(${(seq.fixed / seq.float).toFixed(2)}× float)`,
  );

  const best = (a?: TorchTiming, b?: TorchTiming) => (!a || a.error ? b : !b || b.error ? a : a.ms <= b.ms ? a : b);
  const torch = modes.map(([m, t], i) => best(before[i], peer(m, t)));
  const gru = hasTorch ? best(gruBefore, timeTorchStep(o, 1, 'float', 'gru')) : undefined;
  const gruMs = gru && !gru.error ? gru.ms : null;
  if (gru?.error) log(`PyTorch GRU peer failed: ${gru.error}`);
  if (gruMs !== null) {
    ratios.sequenceFloatVsTorch1 = seq.float / gruMs;
    log(
      `PyTorch sequence demo float step, 1 thread: ${gruMs.toFixed(1)} ms → engine/PyTorch ${ratios.sequenceFloatVsTorch1.toFixed(2)}× ` +
        `(fixed-point QAT ${(seq.fixed / gruMs).toFixed(2)}× PyTorch's float step: PyTorch has no eager int8 QAT of nn.GRU)`,
    );
  }
  for (const [i, t] of torch.entries()) if (t?.error) log(`PyTorch ${modes[i][0]} peer on ${modes[i][1]} threads failed: ${t.error}`);
  const tms = (t?: TorchTiming) => (t && !t.error ? t.ms : null);
  const result: BenchResult = {
    cpu,
    cores,
    backend,
    workers,
    batch: o.batch,
    steps: o.steps,
    float: { engine1_ms: timed.pairs.float.one, engineN_ms: timed.pairs.float.many, torch1_ms: tms(torch[0]), torchN_ms: tms(torch[1]) },
    fixed: { engine1_ms: timed.pairs.fixed.one, engineN_ms: timed.pairs.fixed.many, torch1_ms: tms(torch[2]), torchN_ms: tms(torch[3]) },
    stages: { ...ms },
    rows,
    ratios,
    ...(demoEpoch ? { demoEpoch } : {}),
    sequence: { float_ms: seq.float, fixed_ms: seq.fixed, torch_float_ms: gruMs },
  };
  const version = torch.find((t) => t && !t.error)?.version;
  if (version) result.torchVersion = version;
  for (const [key, label, p] of [
    ['float', 'float', result.float],
    ['fixed', 'fixed-point QAT vs eager int8 QAT', result.fixed],
  ] as const) {
    if (p.torch1_ms !== null) ratios[`${key}VsTorch1`] = p.engine1_ms / p.torch1_ms;
    if (p.torchN_ms !== null) ratios[`${key}VsTorchN`] = p.engineN_ms / p.torchN_ms;
    if (p.torch1_ms !== null || p.torchN_ms !== null) {
      log(
        `PyTorch ${version} ${label}: 1 thread ${p.torch1_ms?.toFixed(1) ?? '—'} ms → engine/PyTorch ${ratios[`${key}VsTorch1`]?.toFixed(2) ?? '—'}×; ` +
          `${workers} threads ${p.torchN_ms?.toFixed(1) ?? '—'} ms → engine (${workers} workers)/PyTorch ${ratios[`${key}VsTorchN`]?.toFixed(2) ?? '—'}×`,
      );
    }
  }
  return result;
}
