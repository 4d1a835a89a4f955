import { tf } from '../backend/tf';
import { Module } from '../nn/module';
import * as F from '../nn/functional';
import { Tensor } from '../tensor';
import { Batch, DataLoader } from './data';
import { Optimizer } from './optim';

export interface StepProgress {
  epoch: number; epochs: number; step: number; steps: number;
  loss: number; meanLoss: number; lr: number; msPerStep: number;
}

export interface FitOptions {
  epochs?: number;
  loss?: (out: Tensor, y: Tensor) => Tensor;
  onStep?: (p: StepProgress) => void;
  onEpochEnd?: (epoch: number, meanLoss: number) => void;
  /** stop after this many steps per epoch (quick runs, tests) */
  maxSteps?: number;
}

/**
 * Trains `model` on every batch of `loader` for `epochs` epochs with `opt`; a NaN or infinite loss
 * stops with NonFiniteLossError before the step's update. Returns the mean loss of each epoch.
 */
export function fit(model: Module, loader: DataLoader, opt: Optimizer, opts: FitOptions = {}): number[] {
  const epochs = opts.epochs ?? 1;
  const lossFn = opts.loss ?? ((o: Tensor, y: Tensor) => F.crossEntropy(o, y));
  const means: number[] = [];
  for (let e = 0; e < epochs; e++) {
    model.train();
    let sum = 0, n = 0;
    const steps = Math.min(loader.length, opts.maxSteps ?? Infinity);
    const t0 = performance.now();
    for (const batch of loader) {
      if (n >= steps) { disposeBatch(batch); break; }
      try {
        const loss = opt.step(() => lossFn(model(batch.x), batch.y));
        sum += loss;
        n++;
        opts.onStep?.({ epoch: e + 1, epochs, step: n, steps, loss, meanLoss: sum / n, lr: opt.lr, msPerStep: (performance.now() - t0) / n });
      } finally {
        disposeBatch(batch);
      }
    }
    means.push(sum / Math.max(1, n));
    opts.onEpochEnd?.(e + 1, sum / Math.max(1, n));
  }
  return means;
}

export interface EvalResult { accuracy: number; loss: number; count: number; }

/** Accuracy and mean cross-entropy over a loader, in eval mode (restores the previous mode). */
export function evaluate(model: Module, loader: DataLoader, opts: { maxBatches?: number; onBatch?: (i: number, n: number) => void } = {}): EvalResult {
  const wasTraining = model.training;
  model.eval();
  let correct = 0, count = 0, lossSum = 0, i = 0;
  const n = Math.min(loader.length, opts.maxBatches ?? Infinity);
  try {
    for (const batch of loader) {
      if (i >= n) { disposeBatch(batch); break; }
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

export function disposeBatch(b: Batch): void {
  b.x.dispose();
  b.y.dispose();
}
