// Where the second core goes in a data-parallel step of the demo CNN (docs/benchmarks.md, "The CNN
// at two cores"). After `npm run build` (the workers run dist/):
//   node --import tsx scripts/bench/two_cores.ts [steps]
// Times the float training step, the four taking turns in blocks of five (two untimed first), of
//   A. the whole batch (64) on one thread,
//   B. half the batch (32) on one thread, alone,
//   C. half the batch on each of two threads at once (two independent replicas, no protocol),
//   D. the whole batch on two data-parallel workers (fit's protocol: SyncBatchNorm, the gradient
//      sum and the optimizer step on rank 0).
// C − B is what two wasm instances cost each other; D − C is what the protocol costs.
import { Worker } from 'node:worker_threads';
import * as os from 'node:os';
import * as path from 'node:path';
import { initBackend, DemoCNN, manualSeed, optim, rand, tensor, F, Tensor } from '../../src/engine/index';
import { DataParallel } from '../../src/engine/parallel/dataParallel';

function replica(rows: number) {
  manualSeed(0);
  const m = new DemoCNN();
  const o = new optim.SGD(m.parameters(), { lr: 0.05, momentum: 0.9 });
  const x = rand([rows, 1, 28, 28]);
  const y = tensor(
    Int32Array.from({ length: rows }, (_, i) => i % 10),
    [rows],
    'int32',
  );
  return { step: () => void o.step(() => F.crossEntropy(m(x) as Tensor, y)), m, o, x, y };
}
const timed = (step: () => void, n: number) =>
  Array.from({ length: n }, () => {
    const t = performance.now();
    step();
    return performance.now() - t;
  });

// the other thread of C: a replica of half the batch in dist/engine.js, stepping when asked
const HELPER = `
const { parentPort, workerData } = require('node:worker_threads');
const e = require(workerData.engine);
(async () => {
  await e.initBackend();
  e.manualSeed(0);
  const m = new e.DemoCNN();
  const o = new e.optim.SGD(m.parameters(), { lr: 0.05, momentum: 0.9 });
  const x = e.rand([32, 1, 28, 28]);
  const y = e.tensor(Int32Array.from({ length: 32 }, (_, i) => i % 10), [32], 'int32');
  parentPort.on('message', (n) => { for (let i = 0; i < n; i++) o.step(() => e.F.crossEntropy(m(x), y)); parentPort.postMessage('done'); });
  parentPort.postMessage('ready');
})();`;

(async () => {
  const steps = Number(process.argv[2] ?? 30);
  const block = 5,
    settle = 2;
  await initBackend();
  const whole = replica(64),
    half = replica(32),
    dpModel = replica(64);
  const helper = new Worker(HELPER, { eval: true, workerData: { engine: path.resolve(__dirname, '..', '..', 'dist', 'engine.js') } });
  await new Promise((res) => helper.once('message', res));
  const other = (n: number) =>
    new Promise((res) => {
      helper.once('message', res);
      helper.postMessage(n);
    });
  const dp = DataParallel.start(dpModel.m, dpModel.o, { workers: 2, sample: { x: dpModel.x, y: dpModel.y }, maxRows: 64 });
  const out: Record<'A' | 'B' | 'C' | 'D', number[]> = { A: [], B: [], C: [], D: [] };
  try {
    for (let done = 0; done < steps; done += block) {
      out.A.push(...timed(whole.step, settle + block).slice(settle));
      out.B.push(...timed(half.step, settle + block).slice(settle));
      const o = other(settle + block + 1); // one more: the helper is still busy while the last timed step runs
      out.C.push(...timed(half.step, settle + block).slice(settle));
      await o;
      out.D.push(...timed(() => void dp.step(dpModel.x, dpModel.y), settle + block).slice(settle));
    }
  } finally {
    dp.close();
    await helper.terminate();
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  const [A, B, C, D] = (['A', 'B', 'C', 'D'] as const).map((k) => med(out[k]));
  console.log(`CPU: ${os.cpus()[0]?.model} (${os.cpus().length} cores); medians of ${out.A.length} steps each, taking turns`);
  console.log(`A. batch 64, one thread:                     ${A.toFixed(1)} ms`);
  console.log(`B. batch 32, one thread alone:               ${B.toFixed(1)} ms (${((B / A) * 100).toFixed(0)}% of A)`);
  console.log(
    `C. batch 32 on each of two threads at once:  ${C.toFixed(1)} ms (+${(((C - B) / B) * 100).toFixed(0)}% over B: two wasm instances at once)`,
  );
  console.log(`D. batch 64 on two data-parallel workers:    ${D.toFixed(1)} ms (+${(D - C).toFixed(1)} ms over C: the protocol)`);
  console.log(`two workers over one thread: ${(A / D).toFixed(2)}×; without the protocol (A/C) it would be ${(A / C).toFixed(2)}×`);
})();
