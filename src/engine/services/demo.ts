import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initBackend } from '../backend/select';
import { calibrate, formatQuantReport, init, QuantReportRow, quantReport } from '../linger/init';
import { normalizeLayers, traceLayers } from '../linger/transforms';
import { Module } from '../nn/module';
import { manualSeed } from '../random';
import { load, readCheckpointInfo, Recipe, save } from '../state/checkpoint';
import { randn } from '../tensor';
import { DataLoader, Dataset, fashionMnist, mnist } from '../train/data';
import { DEMO_INPUT_SHAPE, DEMO_RECIPE, DemoCNN } from '../train/demoCnn';
import { DemoGRU } from '../train/demoGru';
import { evaluate, fit } from '../train/loop';
import { CosineAnnealingLR, SGD } from '../train/optim';
import { ProgressBar } from './progress';
import { defaultWorkers } from '../parallel/dataParallel';

export interface DemoOptions {
  /** the demo CNN (default), or the sequence demo (DemoGRU: rows as time steps) */
  model?: 'cnn' | 'gru';
  /** epochs of float training, float-stage fine-tuning (trace + normalize) and QAT */
  epochs: [number, number, number];
  dataset: 'fashion-mnist' | 'mnist';
  batchSize: number;
  lr: number;
  seed: number;
  limit?: number;
  /** data and parameter bits of the fixed stage */
  bits: number;
  /** skip the float stage: the trained raw model goes straight to init (the seed's warning) */
  straight: boolean;
  /** start from this float checkpoint instead of training the float model */
  floatCheckpoint?: string;
  experiment: string;
  checkpointDir: string;
  json: boolean;
  /** training threads (data-parallel); 0 = one per core (the default) */
  workers?: number;
  /**
   * Called at every training step and evaluation batch (the extension's progress; a throw, e.g. on
   * cancellation, stops the demo there: what was saved stays saved).
   */
  onProgress?: (p: DemoProgress) => void;
}

export interface DemoProgress {
  phase: string;
  step: number;
  steps: number;
  detail?: string;
}

export interface StageResult {
  stage: string;
  epochs: number;
  accuracy: number;
  loss: number;
  checkpoint?: string;
  msPerStep?: number;
}
export interface DemoResult {
  backend: string;
  dataset: string;
  trainSamples: number;
  testSamples: number;
  bits: number;
  straight: boolean;
  stages: StageResult[];
  floatAccuracy: number;
  floatStageAccuracy: number | null;
  fixedAccuracy: number | null;
  /** right after init and calibration, before any QAT step */
  fixedBeforeQatAccuracy: number;
  quantReport: QuantReportRow[];
  seconds: number;
}

/** Demo options that cannot work: said before any data is loaded or any step is trained. */
export class DemoOptionsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DemoOptionsError';
  }
}

const whole = (v: unknown, lo: number, hi = Number.MAX_SAFE_INTEGER) => Number.isInteger(v) && (v as number) >= lo && (v as number) <= hi;

/**
 * Checks every option before the demo starts (`--bits 99` used to train the whole float stage,
 * then fail in init): numbers in range, names that stay inside the checkpoints folder, a folder
 * that is one, and a float checkpoint that reads as one. Throws DemoOptionsError.
 */
export function validateDemoOptions(o: DemoOptions): void {
  const fail = (m: string): never => {
    throw new DemoOptionsError(m);
  };
  if (!Array.isArray(o.epochs) || o.epochs.length !== 3 || !o.epochs.every((e) => whole(e, 0, 100_000)))
    fail(`epochs must be three whole numbers ≥ 0 (float, float stage, QAT), got ${JSON.stringify(o.epochs)}`);
  // linger.init's own range, checked here so that no stage trains for an init that must fail
  if (!whole(o.bits, 2, 16)) fail(`bits must be a whole number from 2 to 16 (linger.init's range), got ${o.bits}`);
  if (!whole(o.batchSize, 1, 65_536)) fail(`the batch size must be a whole number from 1 to 65536, got ${o.batchSize}`);
  if (!(Number.isFinite(o.lr) && o.lr > 0)) fail(`the learning rate must be a number > 0, got ${o.lr}`);
  if (!Number.isSafeInteger(o.seed)) fail(`the seed must be a whole number, got ${o.seed}`);
  if (o.limit !== undefined && !whole(o.limit, 1)) fail(`the limit (images per class) must be a whole number ≥ 1, got ${o.limit}`);
  if (o.workers !== undefined && !whole(o.workers, 0, 64))
    fail(`workers must be a whole number from 1 to 64 (0: one per core), got ${o.workers}`);
  if (o.dataset !== 'fashion-mnist' && o.dataset !== 'mnist')
    fail(`the dataset must be fashion-mnist or mnist, got '${String(o.dataset)}'`);
  if (o.model !== undefined && o.model !== 'cnn' && o.model !== 'gru') fail(`the model must be cnn or gru, got '${String(o.model)}'`);
  if (typeof o.experiment !== 'string' || !/^[\w][\w.-]*$/.test(o.experiment))
    fail(
      `the experiment name must be letters, digits, '_', '-' or '.' (a folder inside the checkpoints folder), got '${String(o.experiment)}'`,
    );
  try {
    const st = fs.statSync(o.checkpointDir);
    if (!st.isDirectory()) fail(`the checkpoints folder ${o.checkpointDir} is not a folder`);
  } catch (e) {
    if (e instanceof DemoOptionsError) throw e;
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT')
      fail(`the checkpoints folder ${o.checkpointDir} cannot be used: ${(e as Error).message}`);
  }
  if (o.floatCheckpoint !== undefined) {
    let stage: string;
    try {
      stage = readCheckpointInfo(o.floatCheckpoint).metadata.stage;
    } catch (e) {
      return fail(`the float checkpoint cannot be read: ${(e as Error).message}`);
    }
    if (stage !== 'float') fail(`the float checkpoint ${o.floatCheckpoint} is a ${stage} checkpoint (the demo starts from a float one)`);
  }
}

interface LockFile {
  pid: number;
  host: string;
  started: string;
}

/**
 * Takes the experiment folder for this run: a `.lock` file made exclusively, holding the pid.
 * Two runs into one folder used to interleave their stages (float from one, fixed from the other
 * with a parent pointing at the first); the second now stops with an error before any work. A
 * lock whose process is gone (on this host) is taken over. Returns the release function.
 */
export function lockExperiment(dir: string): () => void {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, '.lock');
  const mine: LockFile = { pid: process.pid, host: os.hostname(), started: new Date().toISOString() };
  for (let attempt = 0; ; attempt++) {
    try {
      const fd = fs.openSync(file, 'wx', 0o644);
      try {
        fs.writeSync(fd, JSON.stringify(mine));
      } finally {
        fs.closeSync(fd);
      }
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw e;
      let held: Partial<LockFile> = {};
      try {
        held = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<LockFile>;
      } catch {
        /* being written, or garbage: treated as held */
      }
      if (held.host === mine.host && typeof held.pid === 'number' && !alive(held.pid)) {
        fs.rmSync(file, { force: true }); // its run died: take the folder over
        continue;
      }
      throw new DemoOptionsError(
        `${dir} is in use by another run (pid ${held.pid ?? '?'}${held.host && held.host !== mine.host ? ` on ${held.host}` : ''}` +
          `${held.started ? `, started ${held.started}` : ''}): wait for it to finish, or give this run its own --experiment NAME (or --checkpoints DIR); ` +
          `if no run is left, delete ${file}`,
      );
    }
  }
  return () => {
    try {
      const held = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<LockFile>;
      if (held.pid === mine.pid && held.started === mine.started) fs.rmSync(file, { force: true });
    } catch {
      /* already gone */
    }
  };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The demo: linger's two-stage path on the demo CNN (or the sequence demo's GRU). Float training → traceLayers +
 * normalizeLayers + fine-tune → init + QAT → integer-exact eval, with a checkpoint per stage.
 */
export async function runDemo(o: DemoOptions, log: (s: string) => void): Promise<DemoResult> {
  validateDemoOptions(o);
  const release = lockExperiment(path.join(o.checkpointDir, o.experiment));
  try {
    return await runLockedDemo(o, log);
  } finally {
    release();
  }
}

async function runLockedDemo(o: DemoOptions, log: (s: string) => void): Promise<DemoResult> {
  const t0 = performance.now();
  const backend = await initBackend();
  const threads = o.workers || defaultWorkers();
  log(`backend: ${backend}, training on ${threads} thread${threads === 1 ? '' : 's'}`);
  manualSeed(o.seed);
  log(`loading ${o.dataset}…`);
  const ds = o.dataset === 'mnist' ? mnist() : fashionMnist({ limitPerClass: o.limit });
  log(`${ds.train.length} training / ${ds.test.length} test images`);
  const model = o.model === 'gru' ? new DemoGRU() : new DemoCNN();
  const dir = path.join(o.checkpointDir, o.experiment);
  const stages: StageResult[] = [];
  const inputShape = DEMO_INPUT_SHAPE;
  const test = () => new DataLoader(ds.test, { batchSize: 256 });

  const train = (label: string, epochs: number, lr: number): number => {
    if (epochs <= 0) return 0;
    const opt = new SGD(model.parameters(), { lr, momentum: DEMO_RECIPE.momentum });
    const sched = new CosineAnnealingLR(opt, epochs);
    const loader = new DataLoader(ds.train, { batchSize: o.batchSize, shuffle: true, seed: o.seed + stages.length * 1000 });
    let ms = 0;
    let bar: ProgressBar | null = null;
    let epoch = 0;
    // one fit for the whole stage: its worker threads start once
    fit(model, loader, opt, {
      epochs,
      workers: o.workers ?? 0,
      onNote: (s) => log(s),
      onStep: (p) => {
        if (p.epoch !== epoch) {
          epoch = p.epoch;
          bar = new ProgressBar(`${label} epoch ${epoch}/${epochs}`, loader.length);
        }
        ms = p.msPerStep;
        o.onProgress?.({
          phase: `${label} epoch ${epoch}/${epochs}`,
          step: p.step,
          steps: p.steps,
          detail: `loss ${p.meanLoss.toFixed(4)}`,
        });
        if (p.step % 5 === 0 || p.step === p.steps)
          bar!.update(p.step, `loss ${p.meanLoss.toFixed(4)} · ${p.msPerStep.toFixed(0)} ms/step`);
      },
      onEpochEnd: () => sched.step(),
    });
    return ms;
  };
  // what every stage's checkpoint records of how it was made (linger.recipe): the experiment view
  // explains a surprising number by it (a short schedule, few images)
  const recipeOf = (stage: string, epochs: number, lr: number, extra: Recipe = {}): Recipe => ({
    dataset: o.dataset,
    trainImages: ds.train.length,
    testImages: ds.test.length,
    ...(o.limit !== undefined ? { limitPerClass: o.limit } : {}),
    epochs,
    lr,
    batchSize: o.batchSize,
    momentum: DEMO_RECIPE.momentum,
    seed: o.seed,
    schedule: `${o.epochs.join(',')}${o.straight ? ' (straight)' : ''}`,
    ...(stage === 'fixed' ? { bits: o.bits } : {}),
    ...extra,
  });
  const evalStage = async (stage: string, epochs: number, ms: number, parent?: string, recipe?: Recipe): Promise<StageResult> => {
    const bar = new ProgressBar(`evaluating ${stage}`, Math.ceil(ds.test.length / 256));
    const r = evaluate(model, test(), {
      onBatch: (i, n) => {
        bar.update(i);
        o.onProgress?.({ phase: `evaluating ${stage}`, step: i, steps: n });
      },
    });
    log(`${stage} test accuracy: ${(r.accuracy * 100).toFixed(2)}% (loss ${r.loss.toFixed(4)})`);
    const file = path.join(dir, `${stage}.safetensors`);
    await save(model, file, { metrics: { accuracy: r.accuracy, loss: r.loss }, parent, inputShape, ...(recipe ? { recipe } : {}) });
    log(`saved ${file}`);
    const res = { stage, epochs, accuracy: r.accuracy, loss: r.loss, checkpoint: file, ...(ms ? { msPerStep: ms } : {}) };
    stages.push(res);
    return res;
  };

  // 1. float
  log(model.toString());
  let floatRes: StageResult;
  if (o.floatCheckpoint) {
    model.loadStateDict(await load(o.floatCheckpoint));
    log(`loaded float checkpoint ${o.floatCheckpoint}`);
    floatRes = await evalStage('float', 0, 0, o.floatCheckpoint, recipeOf('float', 0, o.lr, { from: path.basename(o.floatCheckpoint) }));
  } else {
    const ms = train('float', o.epochs[0], o.lr);
    floatRes = await evalStage('float', o.epochs[0], ms, undefined, recipeOf('float', o.epochs[0], o.lr));
  }

  // 2. float stage: trace (fusion + ahead-ReLU marks), normalize, fine-tune
  let stageRes: StageResult | null = null;
  if (!o.straight) {
    traceLayers(model, model, randn(inputShape));
    log('after linger.traceLayers:');
    log(model.toString());
    const normalize = { normalizeWeightValue: 8, normalizeBiasValue: null, normalizeOutputValue: 8 };
    normalizeLayers(model, normalize);
    const ms = train('float stage (traced, normalized)', o.epochs[1], o.lr / 5);
    stageRes = await evalStage('traced', o.epochs[1], ms, floatRes.checkpoint, recipeOf('traced', o.epochs[1], o.lr / 5, normalize));
  }

  // 3. fixed stage: init, QAT, integer-exact eval
  init(model, { dataBits: o.bits, parameterBits: o.bits, outBits: 8, dummyInput: randn(inputShape) });
  log(`after linger.init (${o.bits}-bit data and parameters):`);
  log(model.toString());
  // the quantizers' running statistics start empty: collect them before the first eval
  const calib = new DataLoader(ds.train, { batchSize: o.batchSize, shuffle: true, seed: o.seed + 7 });
  const nCal = calibrate(model, calib, { maxBatches: 50 });
  const cal = evaluate(model, test());
  log(`fixed point right after init (calibrated on ${nCal} batches, no QAT yet): ${(cal.accuracy * 100).toFixed(2)}%`);
  const ms = train('QAT', o.epochs[2], o.lr / 10);
  const fixedRes = await evalStage(
    'fixed',
    o.epochs[2],
    ms,
    (stageRes ?? floatRes).checkpoint,
    recipeOf('fixed', o.epochs[2], o.lr / 10, { calibrationBatches: nCal }),
  );
  const report = quantReportOn(model, ds.test);
  log('quantization report (one test batch):');
  log(formatQuantReport(report));

  const fmt = (v: number | null | undefined) => (v == null ? '   -  ' : `${(v * 100).toFixed(2)}%`);
  log('');
  log(
    `float ${fmt(floatRes.accuracy)} → float stage ${fmt(stageRes?.accuracy)} → fixed point ${fmt(fixedRes.accuracy)}` +
      (stageRes ? ` (fixed − float stage: ${((fixedRes.accuracy - stageRes.accuracy) * 100).toFixed(2)} points)` : ''),
  );
  return {
    backend,
    dataset: o.dataset,
    trainSamples: ds.train.length,
    testSamples: ds.test.length,
    bits: o.bits,
    straight: o.straight,
    stages,
    floatAccuracy: floatRes.accuracy,
    floatStageAccuracy: stageRes?.accuracy ?? null,
    fixedAccuracy: fixedRes.accuracy,
    fixedBeforeQatAccuracy: cal.accuracy,
    quantReport: report,
    seconds: (performance.now() - t0) / 1000,
  };
}

function quantReportOn(model: Module, ds: Dataset): QuantReportRow[] {
  const first = new DataLoader(ds, { batchSize: 256 })[Symbol.iterator]().next();
  if (first.done) return [];
  try {
    return quantReport(model, first.value.x);
  } finally {
    first.value.x.dispose();
    first.value.y.dispose();
  }
}
