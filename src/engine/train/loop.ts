import { tf } from '../backend/tf';
import { Module } from '../nn/module';
import * as F from '../nn/functional';
import { Tensor } from '../tensor';
import { DataLoader, disposeBatch } from './data';
import { Optimizer } from './optim';
import { DataParallel, defaultWorkers, whyNotParallel } from '../parallel/dataParallel';

export interface StepProgress {
  epoch: number;
  epochs: number;
  step: number;
  steps: number;
  loss: number;
  meanLoss: number;
  lr: number;
  msPerStep: number;
}

export interface FitOptions {
  epochs?: number;
  loss?: (out: Tensor, y: Tensor) => Tensor;
  onStep?: (p: StepProgress) => void;
  onEpochEnd?: (epoch: number, meanLoss: number) => void;
  /** stop after this many steps per epoch (quick runs, tests) */
  maxSteps?: number;
  /**
   * Threads to train on (data-parallel, each takes 1/N of every batch; the result is the one-thread
   * run's up to float summation order). Default 1; 0 = one per core. Needs a model worker threads
   * can build (DemoCNN, a model file, an ONNX import) and the default loss; otherwise one thread,
   * said through onNote.
   */
  workers?: number;
  onNote?: (message: string) => void;
}

/** The number of threads a fit with `workers` uses on this model, and why fewer when fewer. */
export function plannedWorkers(model: Module, opts: Pick<FitOptions, 'workers' | 'loss'>): { workers: number; note?: string } {
  const asked = opts.workers === 0 ? defaultWorkers() : Math.max(1, Math.floor(opts.workers ?? 1));
  if (asked === 1) return { workers: 1 };
  if (opts.loss) return { workers: 1, note: 'a custom loss function cannot be sent to worker threads: training on one thread' };
  const why = whyNotParallel(model);
  return why ? { workers: 1, note: why } : { workers: asked };
}

/**
 * Trains `model` on every batch of `loader` for `epochs` epochs with `opt`; a NaN or infinite loss
 * stops with NonFiniteLossError before the step's update. Returns the mean loss of each epoch.
 */
export function fit(model: Module, loader: DataLoader, opt: Optimizer, opts: FitOptions = {}): number[] {
  const epochs = opts.epochs ?? 1;
  const lossFn = opts.loss ?? ((o: Tensor, y: Tensor) => F.crossEntropy(o, y));
  const means: number[] = [];
  const plan = plannedWorkers(model, opts);
  if (plan.note) opts.onNote?.(plan.note);
  let pool: DataParallel | null = null;
  try {
    for (let e = 0; e < epochs; e++) {
      model.train();
      let sum = 0,
        n = 0;
      const steps = Math.min(loader.length, opts.maxSteps ?? Infinity);
      const t0 = performance.now();
      for (const batch of loader) {
        if (n >= steps) {
          disposeBatch(batch);
          break;
        }
        try {
          if (!pool && plan.workers > 1) {
            pool = DataParallel.start(model, opt, {
              workers: plan.workers,
              sample: batch,
              maxRows: Math.max(loader.batchSize, batch.x.shape[0]),
            });
          }
          const loss = pool ? pool.step(batch.x, batch.y) : opt.step(() => lossFn(model(batch.x), batch.y));
          sum += loss;
          n++;
          opts.onStep?.({
            epoch: e + 1,
            epochs,
            step: n,
            steps,
            loss,
            meanLoss: sum / n,
            lr: opt.lr,
            msPerStep: (performance.now() - t0) / n,
          });
        } finally {
          disposeBatch(batch);
        }
      }
      means.push(sum / Math.max(1, n));
      opts.onEpochEnd?.(e + 1, sum / Math.max(1, n));
    }
  } finally {
    (pool as DataParallel | null)?.close();
  }
  return means;
}

export interface EvalResult {
  accuracy: number;
  loss: number;
  count: number;
}

/** Accuracy and mean cross-entropy over a loader, in eval mode (restores the previous mode). */
export function evaluate(
  model: Module,
  loader: DataLoader,
  opts: { maxBatches?: number; onBatch?: (i: number, n: number) => void } = {},
): EvalResult {
  const wasTraining = model.training;
  model.eval();
  let correct = 0,
    count = 0,
    lossSum = 0,
    i = 0;
  const n = Math.min(loader.length, opts.maxBatches ?? Infinity);
  try {
    for (const batch of loader) {
      if (i >= n) {
        disposeBatch(batch);
        break;
      }
      try {
        tf.tidy(() => {
          const out = model(batch.x) as Tensor;
          const l = F.crossEntropy(out, batch.y, { reduction: 'sum' });
          lossSum += l.item();
          const pred = tf.argMax(out.logical(), 1);
          correct += tf.sum(tf.cast(tf.equal(pred, batch.y.raw), 'int32')).dataSync()[0];
          count += batch.y.size;
        });
      } finally {
        disposeBatch(batch);
      }
      opts.onBatch?.(++i, n);
    }
  } finally {
    model.train(wasTraining);
  }
  return { accuracy: count ? correct / count : 0, loss: count ? lossSum / count : 0, count };
}
