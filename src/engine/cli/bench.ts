import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initBackend } from '../backend/select';
import * as F from '../nn/functional';
import { manualSeed } from '../random';
import { rand, randn, tensor } from '../tensor';
import { setReleasing } from '../memory';
import { DEMO_INPUT_SHAPE, DemoCNN } from '../train/demoCnn';
import { init } from '../linger/init';
import { benchAnalyzer } from '../analysis/bench';
import { normalizeLayers, traceLayers } from '../linger/transforms';
import { SGD } from '../train/optim';

export interface BenchOptions { steps: number; warmup: number; batch: number; torch: boolean; python: string; }

export interface BenchRow { name: string; ms: number; }
export interface TorchTiming { version: string; ms: number; error?: string }
export interface BenchResult {
  backend: string; threads: number; rows: BenchRow[];
  torch?: { float?: TorchTiming; qat?: TorchTiming };
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

/**
 * Median ms of a training step for each run, the runs taking turns in blocks of five steps, so a
 * busy machine slows them alike and the ratios stay meaningful (alternating every step thrashes
 * caches). `before` runs ahead of each of a run's blocks (e.g. a switch only that run sets).
 */
function interleaved(o: { steps: number; warmup: number; batch: number },
  runs: { model: DemoCNN; opt: SGD; before?: () => void }[]): number[] {
  const x = rand([o.batch, 1, 28, 28]);
  const y = tensor(Int32Array.from({ length: o.batch }, (_, i) => i % 10), [o.batch], 'int32');
  const times = runs.map(() => [] as number[]);
  const block = 5;
  try {
    for (let done = 0; done < o.warmup + o.steps; done += block) {
      runs.forEach((r, k) => {
        r.before?.();
        for (let i = done; i < Math.min(done + block, o.warmup + o.steps); i++) {
          const t0 = performance.now();
          r.opt.step(() => F.crossEntropy(r.model(x), y));
          if (i >= o.warmup) times[k].push(performance.now() - t0);
        }
      });
    }
  } finally {
    setReleasing(true);
  }
  return times.map(median);
}

/**
 * Median ms of a demo-CNN training step (SGD lr 0.05, momentum 0.9) after warm-up, per stage:
 * float; traced (Conv+BN fused: fused forward, unfused backward); normalized (traced +
 * normalizeLayers' clamps); fixed (traced + normalized + init: QAT).
 */
export function timeTrainingSteps(o: { steps: number; warmup: number; batch: number }, stages: BenchStage[] = BENCH_STAGES): Record<BenchStage, number> {
  const ms = interleaved(o, stages.map(stageModel));
  return Object.fromEntries(stages.map((s, i) => [s, ms[i]])) as Record<BenchStage, number>;
}

/**
 * What the release mechanism (memory.ts: a scope per module call, tracking of engine tensors)
 * costs a training step: the same stage with it on and off, in turns, in one process.
 */
export function timeReleaseCost(o: { steps: number; warmup: number; batch: number }, stage: BenchStage): { on: number; off: number } {
  const [on, off] = interleaved(o, [
    { ...stageModel(stage), before: () => setReleasing(true) },
    { ...stageModel(stage), before: () => setReleasing(false) },
  ]);
  return { on, off };
}

function torchPeerScript(): string {
  // dist/cli.js → ../scripts; src/engine/cli/bench.ts → ../../../scripts
  for (const up of ['..', path.join('..', '..', '..')]) {
    const p = path.resolve(__dirname, up, 'scripts', 'bench', 'torch_peer.py');
    if (fs.existsSync(p)) return p;
  }
  throw new Error('scripts/bench/torch_peer.py not found next to the CLI');
}

/** Runs the PyTorch peer with the same number of threads; undefined when torch is not installed. */
export function timeTorchStep(o: BenchOptions, threads: number, mode: 'float' | 'qat'): TorchTiming | undefined {
  const probe = spawnSync(o.python, ['-c', 'import torch'], { encoding: 'utf8' });
  if (probe.status !== 0) return undefined;
  const r = spawnSync(o.python, [torchPeerScript(), '--threads', String(threads), '--steps', String(o.steps), '--warmup', String(o.warmup),
    '--batch', String(o.batch), '--mode', mode], { encoding: 'utf8' });
  if (r.status !== 0) return { version: '?', ms: NaN, error: (r.stderr || '').trim().split('\n').slice(-3).join(' ') };
  const j = JSON.parse(r.stdout.trim().split('\n').pop()!) as { torch: string; median_ms: number };
  return { version: j.torch, ms: j.median_ms };
}

export async function runBench(o: BenchOptions, log: (s: string) => void): Promise<BenchResult> {
  const backend = await initBackend();
  // wasm runs single-threaded under Node; the PyTorch peer gets the same thread count
  const threads = 1;
  log(`CPU: ${os.cpus()[0]?.model ?? 'unknown'} (${os.cpus().length} cores)`);
  log(`backend: ${backend}, threads: ${threads}, batch ${o.batch}, median of ${o.steps} steps after ${o.warmup} warm-up`);
  const rows: BenchRow[] = [];
  const ms: Record<BenchStage, number> = { float: 0, traced: 0, normalized: 0, fixed: 0 };
  const names: Record<BenchStage, string> = {
    float: 'float step', traced: 'traced step (Conv+BN fused)', normalized: 'traced + normalized step', fixed: 'fixed-point QAT step',
  };
  // PyTorch runs before and after the engine; the faster of its two medians is the baseline
  const peer = (mode: 'float' | 'qat') => (o.torch ? timeTorchStep(o, threads, mode) : undefined);
  const before = { float: peer('float'), qat: peer('qat') };
  const timed = timeTrainingSteps(o);
  for (const stage of BENCH_STAGES) {
    ms[stage] = timed[stage];
    rows.push({ name: names[stage], ms: ms[stage] });
    log(`engine ${names[stage]}: ${ms[stage].toFixed(1)} ms`);
  }
  const ratios: Record<string, number> = {
    fusionOverhead: ms.traced / ms.float - 1,
    normalizedOverhead: ms.normalized / ms.float - 1,
  };
  log(`ConvBN fusion overhead (traced / float − 1): ${(ratios.fusionOverhead * 100).toFixed(1)}%` +
    ` (with normalize clamps: ${(ratios.normalizedOverhead * 100).toFixed(1)}%)`);
  // a cost of a few percent needs more steps than the stage table: 40-step runs scattered ±5%
  const long = { ...o, steps: Math.max(o.steps, 150) };
  for (const stage of ['float', 'fixed'] as const) {
    const c = timeReleaseCost(long, stage);
    ratios[`releaseCost_${stage}`] = c.on / c.off - 1;
    rows.push({ name: `${names[stage]} without the release mechanism`, ms: c.off });
    log(`memory release mechanism, ${stage} step: ${c.on.toFixed(1)} ms with, ${c.off.toFixed(1)} ms without → ` +
      `${(ratios[`releaseCost_${stage}`] * 100).toFixed(1)}% (goal ≤ 2%)`);
  }
  const an = await benchAnalyzer();
  rows.push({ name: `load-order analysis of a ${an.lines}-line Python script`, ms: an.ms });
  log(`load-order analyzer: ${an.lines} lines in ${an.ms.toFixed(1)} ms (target < 50 ms)`);
  const result: BenchResult = { backend, threads, rows, ratios };
  if (o.torch) {
    if (!before.float) {
      log(`PyTorch peer skipped: ${o.python} has no torch (apt-get install python3-torch)`);
      return result;
    }
    const best = (a?: TorchTiming, b?: TorchTiming) => (!a || a.error ? b : !b || b.error ? a : a.ms <= b.ms ? a : b);
    const tf = best(before.float, peer('float'));
    const tq = best(before.qat, peer('qat'));
    result.torch = { float: tf, qat: tq };
    for (const [label, t, mine, key] of [['float', tf, ms.float, 'floatVsTorch'], ['eager QAT', tq, ms.fixed, 'fixedVsTorchQat']] as const) {
      if (!t || t.error) { log(`PyTorch ${label} peer failed: ${t?.error ?? 'no result'}`); continue; }
      ratios[key] = mine / t.ms;
      log(`PyTorch ${t.version} ${label} step (${threads} thread): ${t.ms.toFixed(1)} ms → engine/PyTorch ${ratios[key].toFixed(2)}×`);
    }
  }
  return result;
}
