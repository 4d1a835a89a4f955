import { initBackend } from '../backend/select';
import { manualSeed } from '../random';
import { DataLoader, fashionMnist, mnist } from '../train/data';
import { DEMO_RECIPE, DemoCNN } from '../train/demoCnn';
import { evaluate, fit } from '../train/loop';
import { SGD } from '../train/optim';
import { ProgressBar } from './progress';

export interface DemoOptions {
  epochs: number; dataset: 'fashion-mnist' | 'mnist'; batchSize: number; lr: number; seed: number;
  limit?: number; json: boolean;
}

export interface DemoResult {
  backend: string; dataset: string; epochs: number; trainSamples: number; testSamples: number;
  floatAccuracy: number; floatLoss: number; msPerStep: number; seconds: number;
}

/** The demo: the demo CNN trained on Fashion-MNIST (float stage), with progress and a test evaluation. */
export async function runDemo(o: DemoOptions, log: (s: string) => void): Promise<DemoResult> {
  const t0 = performance.now();
  const backend = await initBackend();
  log(`backend: ${backend}`);
  manualSeed(o.seed);
  log(`loading ${o.dataset}…`);
  const ds = o.dataset === 'mnist' ? mnist() : fashionMnist({ limitPerClass: o.limit });
  log(`${ds.train.length} training / ${ds.test.length} test images`);
  const model = new DemoCNN();
  log(model.toString());
  const opt = new SGD(model.parameters(), { lr: o.lr, momentum: DEMO_RECIPE.momentum });
  const train = new DataLoader(ds.train, { batchSize: o.batchSize, shuffle: true, seed: o.seed });
  let msPerStep = 0;
  for (let e = 1; e <= o.epochs; e++) {
    const bar = new ProgressBar(`float epoch ${e}/${o.epochs}`, train.length);
    fit(model, train, opt, {
      epochs: 1,
      onStep: (p) => {
        msPerStep = p.msPerStep;
        if (p.step % 5 === 0 || p.step === p.steps) bar.update(p.step, `loss ${p.meanLoss.toFixed(4)} · ${p.msPerStep.toFixed(0)} ms/step`);
      },
    });
  }
  const testBar = new ProgressBar('evaluating', Math.ceil(ds.test.length / 256));
  const r = evaluate(model, new DataLoader(ds.test, { batchSize: 256 }), { onBatch: (i) => testBar.update(i) });
  log(`float test accuracy: ${(r.accuracy * 100).toFixed(2)}% (loss ${r.loss.toFixed(4)}, ${r.count} images)`);
  return {
    backend, dataset: o.dataset, epochs: o.epochs, trainSamples: ds.train.length, testSamples: ds.test.length,
    floatAccuracy: r.accuracy, floatLoss: r.loss, msPerStep, seconds: (performance.now() - t0) / 1000,
  };
}
