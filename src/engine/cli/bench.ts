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
import { Module } from '../nn/module';
import { Conv1d } from '../nn/conv';
import { BatchNorm1d } from '../nn/batchnorm';
import { ReLU } from '../nn/activation';
import { Linear } from '../nn/linear';
import { LSTM } from '../nn/recurrent';
import { engineRun, fmt, takeTurns, Timing, TorchPeer, TurnRun } from './benchTurns';

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
  /** median ms of a step, and the 25th and 75th percentiles around it */
  ms: number;
  p25: number;
  p75: number;
}
/** One training step's median ms: the engine on 1 and N threads, PyTorch on 1 and N threads. */
export interface PeerTimes {
  engine1_ms: number;
  engineN_ms: number;
  torch1_ms: number | null;
  torchN_ms: number | null;
}
/** The sequence demo (DemoGRU) and its LSTM twin on one thread: training steps (QAT for fixed) and eval forwards. */
export interface SequenceTimes {
  float_ms: number;
  fixed_ms: number;
  torch_float_ms: number | null;
  float_eval_ms: number;
  fixed_eval_ms: number;
  lstm_float_ms: number;
  lstm_fixed_ms: number;
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
  sequence: SequenceTimes;
  /** every timing with its spread, by name */
  rows: BenchRow[];
  ratios: Record<string, number>;
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

const trainRun = ({ model, opt }: { model: Module; opt: SGD }, x: Tensor, y: Tensor, before?: () => void): TurnRun =>
  engineRun(() => {
    opt.step(() => F.crossEntropy(model(x) as Tensor, y));
  }, before);
const evalRun = (model: Module, x: Tensor): TurnRun =>
  engineRun(() => {
    (model(x) as Tensor).dispose();
  });

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

/** The demo CNN, every stage on one thread (float; traced: Conv+BN fused; normalized; fixed: QAT), taking turns. */
export async function timeStages(o: { steps: number; warmup: number; batch: number }): Promise<Record<BenchStage, Timing>> {
  const { x, y } = benchBatch(o.batch);
  try {
    const t = await takeTurns(
      BENCH_STAGES.map((s) => trainRun(stageModel(s), x, y)),
      o,
    );
    return Object.fromEntries(BENCH_STAGES.map((s, i) => [s, t[i]])) as Record<BenchStage, Timing>;
  } finally {
    x.dispose();
    y.dispose();
  }
}

/**
 * One stage of the demo CNN against its PyTorch peer, all four taking turns in blocks of ten
 * steps after two untimed ones: the engine on 1 thread and on N data-parallel workers, PyTorch on
 * 1 and N threads (float training; for the fixed stage, PyTorch's eager int8 QAT).
 */
export async function timeAgainstPeer(
  o: { steps: number; warmup: number; batch: number; workers: number },
  stage: 'float' | 'fixed',
  peer: TorchPeer | null,
): Promise<{ one: Timing; many: Timing; torch1: Timing | null; torchN: Timing | null }> {
  const { x, y } = benchBatch(o.batch);
  const { model, opt } = stageModel(stage);
  const dp = DataParallel.start(model, opt, { workers: o.workers, sample: { x, y }, maxRows: o.batch });
  try {
    const mode = stage === 'float' ? 'float' : 'qat';
    const runs: TurnRun[] = [trainRun(stageModel(stage), x, y), engineRun(() => void dp.step(x, y))];
    if (peer) runs.push(peer.run('cnn', mode, 1), peer.run('cnn', mode, o.workers));
    const [one, many, torch1, torchN] = await takeTurns(runs, o, { block: 10, settle: 2 });
    return { one, many, torch1: torch1 ?? null, torchN: torchN ?? null };
  } finally {
    dp.close();
    x.dispose();
    y.dispose();
  }
}

/**
 * What the release mechanism (memory.ts: a scope per module call, tracking of engine tensors)
 * costs a training step: the same stage with it on and off, in turns, in one process.
 */
export async function timeReleaseCost(
  o: { steps: number; warmup: number; batch: number },
  stage: BenchStage,
): Promise<{ on: Timing; off: Timing }> {
  const { x, y } = benchBatch(o.batch);
  try {
    const [on, off] = await takeTurns(
      [trainRun(stageModel(stage), x, y, () => setReleasing(true)), trainRun(stageModel(stage), x, y, () => setReleasing(false))],
      o,
    );
    return { on, off };
  } finally {
    setReleasing(true);
    x.dispose();
    y.dispose();
  }
}

/** DemoGRU with an LSTM in the GRU's place: the LSTMInt rows of the bench. */
class DemoLSTM extends Module {
  conv = new Conv1d(28, 32, 3, { padding: 1 });
  bn = new BatchNorm1d(32);
  relu = new ReLU();
  lstm = new LSTM(32, 64, { batchFirst: true });
  fc = new Linear(64, 10);
  forward(x: Tensor): Tensor {
    const seq = x.reshape([-1, 28, 28]).transpose(1, 2);
    const y = this.relu(this.bn(this.conv(seq))).transpose(1, 2);
    const [, [hN]] = this.lstm(y) as [Tensor, [Tensor, Tensor]];
    return this.fc(hN.reshape([-1, 64]));
  }
}

/**
 * The sequence demo on one thread: DemoGRU's float step and its fixed-stage (QAT, GRUInt) step,
 * PyTorch's float step of the same model, and the LSTM twin's two steps, taking turns; then the
 * eval forwards of the float and the fixed DemoGRU (after those steps gave it its statistics).
 */
export async function timeSequence(
  o: { steps: number; warmup: number; batch: number },
  peer: TorchPeer | null,
): Promise<Record<keyof SequenceTimes, Timing | null>> {
  const { x, y } = benchBatch(o.batch);
  const make = (fixed: boolean, Model: new () => Module) => {
    manualSeed(0);
    const model = new Model();
    if (fixed) {
      traceLayers(model, model, randn(DEMO_INPUT_SHAPE));
      normalizeLayers(model);
      init(model);
    }
    return { model, opt: new SGD(model.parameters(), { lr: 0.05, momentum: 0.9 }) };
  };
  try {
    const gf = make(false, DemoGRU),
      gq = make(true, DemoGRU);
    const runs = [trainRun(gf, x, y), trainRun(gq, x, y), trainRun(make(false, DemoLSTM), x, y), trainRun(make(true, DemoLSTM), x, y)];
    if (peer) runs.push(peer.run('gru', 'float', 1));
    const [float, fixed, lstmFloat, lstmFixed, torch] = await takeTurns(runs, o);
    gf.model.eval();
    gq.model.eval();
    const [floatEval, fixedEval] = await takeTurns([evalRun(gf.model, x), evalRun(gq.model, x)], o);
    return {
      float_ms: float,
      fixed_ms: fixed,
      torch_float_ms: torch ?? null,
      float_eval_ms: floatEval,
      fixed_eval_ms: fixedEval,
      lstm_float_ms: lstmFloat,
      lstm_fixed_ms: lstmFixed,
    };
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

export async function runBench(o: BenchOptions, log: (s: string) => void): Promise<BenchResult> {
  const backend = await initBackend();
  const workers = o.workers ?? defaultWorkers();
  const cpu = os.cpus()[0]?.model ?? 'unknown';
  const cores = os.cpus().length;
  log(`CPU: ${cpu} (${cores} cores)`);
  log(
    `backend: ${backend}; engine on 1 thread and on ${workers} (data-parallel workers), PyTorch on 1 and ${workers} threads, ` +
      `taking turns; batch ${o.batch}, median (25th–75th percentile) of ${o.steps} steps after ${o.warmup} warm-up`,
  );
  const rows: BenchRow[] = [];
  const row = (name: string, t: Timing) => {
    rows.push({ name, ms: t.ms, p25: t.p25, p75: t.p75 });
    return t;
  };
  const names: Record<BenchStage, string> = {
    float: 'float step',
    traced: 'traced step (Conv+BN fused)',
    normalized: 'traced + normalized step',
    fixed: 'fixed-point QAT step',
  };
  let peer: TorchPeer | null = null;
  if (o.torch) {
    if (spawnSync(o.python, ['-c', 'import torch'], { encoding: 'utf8' }).status !== 0) {
      log(`PyTorch peer skipped: ${o.python} has no torch (apt-get install python3-torch)`);
    } else {
      peer = await TorchPeer.start(o.python, torchPeerScript(), o.batch);
      log(`PyTorch ${peer.version} takes turns with the engine`);
    }
  }
  try {
    const stages = await timeStages(o);
    for (const stage of BENCH_STAGES) log(`engine ${names[stage]}, 1 thread: ${fmt(row(`${names[stage]}, 1 thread`, stages[stage]))}`);
    const ms = Object.fromEntries(BENCH_STAGES.map((s) => [s, stages[s].ms])) as Record<BenchStage, number>;
    const ratios: Record<string, number> = {
      fusionOverhead: ms.traced / ms.float - 1,
      normalizedOverhead: ms.normalized / ms.float - 1,
      fixedOverFloat: ms.fixed / ms.float,
      normalizedOverFloat: ms.normalized / ms.float,
    };
    log(
      `fixed-point QAT step / float step (1 thread): ${ratios.fixedOverFloat.toFixed(2)}× (goal ≤ 1.25×); ` +
        `normalized / float: ${ratios.normalizedOverFloat.toFixed(2)}× (goal ≤ 1.10×)`,
    );

    const pairs: Partial<Record<'float' | 'fixed', PeerTimes>> = {};
    for (const stage of ['float', 'fixed'] as const) {
      const t = await timeAgainstPeer({ ...o, workers }, stage, peer);
      const label = stage === 'float' ? 'float' : 'fixed-point QAT';
      const peerLabel = stage === 'float' ? 'PyTorch float' : "PyTorch's eager int8 QAT";
      row(`${names[stage]}, 1 thread, against PyTorch`, t.one);
      row(`${names[stage]}, ${workers} workers, against PyTorch`, t.many);
      if (t.torch1) row(`${peerLabel} step, 1 thread`, t.torch1);
      if (t.torchN) row(`${peerLabel} step, ${workers} threads`, t.torchN);
      const key = stage === 'float' ? 'speedupFloat' : 'speedupFixed';
      ratios[key] = t.one.ms / t.many.ms;
      log(`engine ${label} step, 1 thread: ${fmt(t.one)}; ${workers} workers: ${fmt(t.many)} (${ratios[key].toFixed(2)}× faster)`);
      if (t.torch1 && t.torchN) {
        ratios[`${stage}VsTorch1`] = t.one.ms / t.torch1.ms;
        ratios[`${stage}VsTorchN`] = t.many.ms / t.torchN.ms;
        log(
          `${peerLabel}, in the same turns: 1 thread ${fmt(t.torch1)} → engine/PyTorch ${ratios[`${stage}VsTorch1`].toFixed(2)}×; ` +
            `${workers} threads ${fmt(t.torchN)} → engine (${workers} workers)/PyTorch ${ratios[`${stage}VsTorchN`].toFixed(2)}×`,
        );
      }
      pairs[stage] = { engine1_ms: t.one.ms, engineN_ms: t.many.ms, torch1_ms: t.torch1?.ms ?? null, torchN_ms: t.torchN?.ms ?? null };
    }

    const seqT = await timeSequence(o, peer);
    const seq = Object.fromEntries(Object.entries(seqT).map(([k, t]) => [k, t?.ms ?? null])) as unknown as SequenceTimes;
    const seqNames: Record<keyof SequenceTimes, string> = {
      float_ms: 'DemoGRU float step, 1 thread',
      fixed_ms: 'DemoGRU fixed-point QAT step (GRUInt), 1 thread',
      torch_float_ms: 'PyTorch DemoGRU float step, 1 thread',
      float_eval_ms: 'DemoGRU float eval forward, 1 thread',
      fixed_eval_ms: 'DemoGRU fixed-point eval forward (GRUInt, integer), 1 thread',
      lstm_float_ms: 'DemoGRU with an LSTM: float step, 1 thread',
      lstm_fixed_ms: 'DemoGRU with an LSTM: fixed-point QAT step (LSTMInt), 1 thread',
    };
    for (const k of Object.keys(seqNames) as (keyof SequenceTimes)[]) {
      const t = seqT[k];
      if (t) log(`${seqNames[k]}: ${fmt(row(seqNames[k], t))}`);
    }
    ratios.sequenceFixedOverFloat = seq.fixed_ms / seq.float_ms;
    ratios.sequenceFixedEvalOverFloatEval = seq.fixed_eval_ms / seq.float_eval_ms;
    ratios.lstmFixedOverFloat = seq.lstm_fixed_ms / seq.lstm_float_ms;
    log(
      `QAT step / float step, 1 thread: GRU ${ratios.sequenceFixedOverFloat.toFixed(2)}×, LSTM ${ratios.lstmFixedOverFloat.toFixed(2)}× (goal ≤ 2.0×); ` +
        `integer eval / float eval (GRU): ${ratios.sequenceFixedEvalOverFloatEval.toFixed(2)}×`,
    );
    if (seq.torch_float_ms !== null) {
      ratios.sequenceFloatVsTorch1 = seq.float_ms / seq.torch_float_ms;
      log(
        `DemoGRU float step, engine/PyTorch (1 thread, same turns): ${ratios.sequenceFloatVsTorch1.toFixed(2)}× (PyTorch has no eager int8 QAT of nn.GRU)`,
      );
    }

    // a cost of a few percent needs more steps than the stage table: 40-step runs scattered ±5%
    const long = { ...o, steps: Math.max(o.steps, Math.min(150, 5 * o.steps)) };
    for (const stage of ['float', 'fixed'] as const) {
      const c = await timeReleaseCost(long, stage);
      ratios[`releaseCost_${stage}`] = c.on.ms / c.off.ms - 1;
      row(`${names[stage]} without the release mechanism`, c.off);
      log(
        `memory release mechanism, ${stage} step: ${c.on.ms.toFixed(1)} ms with, ${c.off.ms.toFixed(1)} ms without → ` +
          `${(ratios[`releaseCost_${stage}`] * 100).toFixed(1)}% (goal ≤ 2%)`,
      );
    }
    const an = await benchAnalyzer();
    rows.push({ name: `load-order analysis of a ${an.lines}-line Python script`, ms: an.ms, p25: an.ms, p75: an.ms });
    log(`load-order analyzer: ${an.lines} lines in ${an.ms.toFixed(1)} ms (target < 50 ms)`);

    let demoEpoch: BenchResult['demoEpoch'];
    if (o.demoEpoch !== false) {
      demoEpoch = timeDemoEpoch(workers);
      log(
        `demo float training, one epoch of Fashion-MNIST on ${workers} workers: ${demoEpoch.seconds.toFixed(1)} s (${demoEpoch.steps} steps, ${demoEpoch.msPerStep.toFixed(1)} ms/step with data loading)`,
      );
    }
    return {
      cpu,
      cores,
      backend,
      workers,
      batch: o.batch,
      steps: o.steps,
      float: pairs.float!,
      fixed: pairs.fixed!,
      stages: ms,
      ...(peer ? { torchVersion: peer.version } : {}),
      ...(demoEpoch ? { demoEpoch } : {}),
      sequence: seq,
      rows,
      ratios,
    };
  } finally {
    peer?.close();
  }
}
