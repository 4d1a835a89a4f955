// The experiment notebook template ("Linger: New Experiment Notebook", `linger new-notebook`):
// linger's whole two-stage path on Fashion-MNIST, each stage explained (from the seed document),
// in TypeScript cells the Linger kernel runs. QUICK trains on a slice (about a minute on two
// cores); without it the schedule is the demo's (`linger demo`), and so is the accuracy.
import { LINGER_KERNELSPEC, LINGER_LANGUAGE_INFO, NbCell, newCellId, Notebook } from './nbformat';

const md = (source: string): NbCell => ({ id: newCellId(), cell_type: 'markdown', source: source.trim(), metadata: {} });
const code = (source: string): NbCell => ({
  id: newCellId(),
  cell_type: 'code',
  source: source.trim(),
  metadata: {},
  outputs: [],
  execution_count: null,
});

export function experimentNotebook(opts: { quick?: boolean; experiment?: string } = {}): Notebook {
  const experiment = opts.experiment ?? 'experiment';
  const cells: NbCell[] = [
    md(`
# Float → fixed point, linger's way

This notebook walks the demo CNN through **linger's two stages** on Fashion-MNIST, as the
linger toolkit does for PyTorch models:

1. **Float stage** — train the float model, then \`linger.traceLayers\` (Conv + BatchNorm fused
   into \`NormalizeConvBN2d\`, ReLUs marked) and \`linger.normalizeLayers\` (clamped weights and
   outputs), and fine-tune.
2. **Fixed stage** — \`linger.init\` replaces the layers by their Int versions (power-of-two
   scales, as chips requantize by shifting), quantization-aware training, integer-exact
   evaluation, a quantization report and an ONNX export checked in onnxruntime.

Each stage saves a checkpoint in \`checkpoints/${experiment}/\`; the **Checkpoints** view lists them,
and the **Model** view shows the model before and after every transform. Cells are TypeScript;
the engine's API (\`nn\`, \`F\`, \`linger\`, \`optim\`, \`data\`, \`fit\`, \`evaluate\`, \`DemoCNN\`, …)
is preloaded, and \`display(value)\` shows models, tensors, reports and charts.

\`QUICK = true\` trains on a slice of the data and a few steps per epoch (about a minute on two
cores); set it to \`false\` for the demo's full schedule (about 91% at the fixed stage).
`),
    code(`
const QUICK = ${opts.quick === false ? 'false' : 'true'};
// epochs of float training, float-stage fine-tuning and QAT; steps per epoch (undefined: all)
const EPOCHS = QUICK ? { float: 1, floatStage: 1, qat: 1 } : { float: 2, floatStage: 1, qat: 1 };
const STEPS = QUICK ? 80 : undefined;
const BATCH = 64, LR = 0.05, SEED = 0, BITS = 8;
const DIR = 'checkpoints/${experiment}';
const INPUT = [1, 1, 28, 28];

manualSeed(SEED);
const { train: trainSet, test: testSet } = data.fashionMnist(QUICK ? { limitPerClass: 600 } : {});
const testLoader = () => new data.DataLoader(testSet, { batchSize: 256 });
const accuracy: { stage: string; accuracy: number }[] = [];
console.log(\`\${trainSet.length} training and \${testSet.length} test images · \${backendName()} backend\`);
`),
    code(`
/** Trains the model with SGD + momentum and a cosine schedule (the demo's recipe). */
function train(model: nn.Module, lr: number, epochs: number, seed: number) {
  const opt = new optim.SGD(model.parameters(), { lr, momentum: 0.9 });
  const sched = new optim.CosineAnnealingLR(opt, epochs);
  const loader = new data.DataLoader(trainSet, { batchSize: BATCH, shuffle: true, seed });
  return fit(model, loader, opt, { epochs, maxSteps: STEPS, onEpochEnd: () => sched.step() });
}

/** Evaluates on the test set, remembers the accuracy for the chart, saves a checkpoint of the stage. */
async function finishStage(model: nn.Module, stage: string, parent?: string) {
  const r = evaluate(model, testLoader());
  accuracy.push({ stage, accuracy: r.accuracy });
  return linger.save(model, \`\${DIR}/\${stage}.safetensors\`, { metrics: { accuracy: r.accuracy, loss: r.loss }, parent, inputShape: INPUT });
}
`),
    md(`
## 1. The float model

linger starts from a **trained float model**. Quantizing an untrained (or barely trained) model
directly tends to lose accuracy or collapse: the fixed-point scales are chosen from the float
ranges, so the float stage is where the weights and activations should settle first.
`),
    code(`
const model = new DemoCNN();
train(model, LR, EPOCHS.float, SEED);
const floatCheckpoint = await finishStage(model, 'float');
`),
    md(`
## 2. The float stage: \`traceLayers\` and \`normalizeLayers\`

\`linger.traceLayers(model, model, dummyInput)\` runs the model once and rewrites it:

- **Conv + BatchNorm → \`NormalizeConvBN2d\`**, *fused in forward and unfused in backward*: the
  forward pass folds the BatchNorm into the convolution's weight and bias, exactly as the chip
  will compute it, while the backward pass still trains the convolution and the BatchNorm as two
  layers (their parameters and running statistics keep their own gradients and updates).
- **Ahead-ReLU marks**: a layer followed by a ReLU is marked, so its output range can be unsigned.

\`linger.normalizeLayers\` then clamps weights and outputs (±8 here), so the ranges the fixed stage
quantizes stay small. The model is fine-tuned with these in place.

**Load after the last transform.** A state dict saved at a stage loads into a model that has had
the same transforms: build the model, apply \`traceLayers\` / \`normalizeLayers\` / \`init\`, *then*
\`loadStateDict\`. Loading in between is the mistake the load-order diagnostics (LINGER001) flag.
`),
    code(`
display(model); // before traceLayers
linger.traceLayers(model, model, randn(INPUT));
linger.normalizeLayers(model, { normalizeWeightValue: 8, normalizeBiasValue: null, normalizeOutputValue: 8 });
model // after: NormalizeConvBN2d, ahead-ReLU marks, normalize settings
`),
    code(`
train(model, LR / 5, EPOCHS.floatStage, SEED + 1000);
const tracedCheckpoint = await finishStage(model, 'traced', floatCheckpoint);
`),
    md(`
## 3. The fixed stage: \`init\` and quantization-aware training

\`linger.init\` replaces every quantizable layer by its Int version (\`NormalizeConvBN2d\` →
\`Conv2dInt\` with the BatchNorm folded, \`Linear\` → \`LinearInt\`, …) with ${'`BITS`'}-bit data and
parameters and power-of-two scales. The quantizers' running statistics start empty, so a few
batches calibrate them before the first evaluation; QAT then trains through the fake quantizers
(straight-through gradients). Evaluation in this stage is **integer-exact**: the same integers
the chip computes.
`),
    code(`
linger.init(model, { dataBits: BITS, parameterBits: BITS, outBits: 8, dummyInput: randn(INPUT) });
linger.calibrate(model, new data.DataLoader(trainSet, { batchSize: BATCH, shuffle: true, seed: SEED + 7 }), { maxBatches: QUICK ? 10 : 50 });
const beforeQat = evaluate(model, testLoader()); // right after init, before any QAT step
model
`),
    code(`
train(model, LR / 10, EPOCHS.qat, SEED + 2000);
const fixedCheckpoint = await finishStage(model, 'fixed', tracedCheckpoint);
`),
    md(`
## 4. Where precision goes

\`linger.quantReport\` lists, layer by layer, the bits, the power-of-two scales of input, weight
and output, the weight ranges, and the output's signal-to-quantization-noise ratio against the
float layer on the same input.
`),
    code(`
const batch = new data.DataLoader(testSet, { batchSize: 256 })[Symbol.iterator]().next().value!;
linger.quantReport(model, batch.x)
`),
    md(`
## 5. ONNX export, checked in onnxruntime

The fixed model exports as standard ONNX (\`qdq\`: QuantizeLinear/DequantizeLinear around integer
arithmetic). \`verifyOnnx\` runs the file in onnxruntime and compares every output with the
engine's integer evaluation.
`),
    code(`
const onnxFile = await linger.exportOnnx(model, randn(INPUT), \`\${DIR}/fixed.qdq.onnx\`, { dialect: 'qdq' });
const check = await linger.verifyOnnx(model, onnxFile, 'qdq', INPUT);
console.log(check.summary);
`),
    code(`
// test accuracy across the stages
chart({
  title: 'test accuracy by stage',
  width: 360, height: 200,
  data: { values: [...accuracy.slice(0, 2), { stage: 'fixed, before QAT', accuracy: beforeQat.accuracy }, ...accuracy.slice(2)] },
  mark: { type: 'bar', tooltip: true },
  encoding: {
    x: { field: 'stage', type: 'nominal', sort: null, title: null, axis: { labelAngle: 0 } },
    y: { field: 'accuracy', type: 'quantitative', axis: { format: '%' }, scale: { domain: [0, 1] } },
    color: { field: 'stage', type: 'nominal', legend: null },
  },
})
`),
  ];
  return {
    nbformat: 4,
    nbformat_minor: 5,
    cells,
    metadata: { kernelspec: { ...LINGER_KERNELSPEC }, language_info: { ...LINGER_LANGUAGE_INFO } },
  };
}
