// Where a demo training step goes, per TF.js kernel (tf.profile over 10 steps after 5 warm-up):
//   node --import tsx scripts/bench/profile_step.ts float|normalized|fixed [cnn|gru]
// (gru: the sequence demo DemoGRU; fixed is then GRUInt QAT)
// "unnamed scope" is the forward of the engine's custom-gradient ops (conv, BN, max pool, linear).
import { initBackend, DemoCNN, DemoGRU, manualSeed, optim, rand, tensor, F, linger, randn } from '../../src/engine/index';
import { tf } from '../../src/engine/backend/tf';
const stage = process.argv[2] ?? 'float';
const which = process.argv[3] ?? 'cnn';
(async () => {
  await initBackend();
  manualSeed(0);
  const m = which === 'gru' ? new DemoGRU() : new DemoCNN();
  if (stage !== 'float') {
    linger.traceLayers(m, m, randn([1, 1, 28, 28]));
    linger.normalizeLayers(m);
  }
  if (stage === 'fixed') linger.init(m);
  const o = new optim.SGD(m.parameters(), { lr: 0.05, momentum: 0.9 });
  const x = rand([64, 1, 28, 28]);
  const y = tensor(
    Int32Array.from({ length: 64 }, (_, i) => i % 10),
    [64],
    'int32',
  );
  for (let i = 0; i < 5; i++) o.step(() => F.crossEntropy(m(x), y));
  const agg = new Map<string, { ms: number; n: number }>();
  let total = 0;
  const N = 10;
  for (let r = 0; r < N; r++) {
    const t = performance.now();
    const p = await tf.profile(() => {
      o.step(() => F.crossEntropy(m(x), y));
    });
    total += performance.now() - t;
    for (const k of p.kernels) {
      const ms = await (k.kernelTimeMs as unknown as Promise<number> | number);
      const e = agg.get(k.name) ?? { ms: 0, n: 0 };
      e.ms += typeof ms === 'number' ? ms : 0;
      e.n++;
      agg.set(k.name, e);
    }
  }
  const rows = [...agg.entries()].sort((a, b) => b[1].ms - a[1].ms);
  const sum = rows.reduce((a, [, e]) => a + e.ms, 0);
  console.log(`${which} ${stage}: step ${(total / N).toFixed(1)} ms (profiled), kernels ${(sum / N).toFixed(1)} ms`);
  for (const [k, e] of rows.slice(0, 18)) console.log(`${k.padEnd(28)} ${(e.ms / N).toFixed(2).padStart(7)} ms  ×${e.n / N}`);
})();
