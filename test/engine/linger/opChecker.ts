// The shared checks of one linger op (docs/architecture.md, "Adding an op"): a small model that
// uses it goes through trace → init → calibration, and then
//   1. its eval equals the op's integer reference (when given), bit for bit;
//   2. training passes straight-through gradients to the input (finite, and equal to the float
//      model's gradient where a float reference is given);
//   3. its 'qdq' export computes the engine's eval in onnxruntime, bit for bit;
//   4. its 'thinker' export has the op's node with linger's attribute names;
//   5. a fixed checkpoint of it rebuilds from a fresh float model (applyCheckpointTransforms),
//      loads strictly and evaluates to the same values.
// Each check is its own test, named after the op.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { linger, nn, Tensor, tidy } from '../../../src/engine/index';
import { tf } from '../../../src/engine/backend/tf';
import { buildOnnxModel, exportOnnx } from '../../../src/engine/onnx/index';
import { onnx } from '../../../src/engine/onnx/proto';
import { diff, runSession, session, tempDir } from '../onnx/ort';

export interface OpCheck {
  /** the op's name, as the tests call it */
  name: string;
  /** a fresh float model using the op (deterministic: seed inside) */
  model(): nn.Module;
  /** an input batch for the model */
  input(seed: number): Tensor;
  /** linger.init's options (e.g. { functions: ['channel_shuffle'] }) */
  init?: linger.InitOptions;
  /** the op's integer reference: what the fixed model's eval must equal exactly on `x` */
  reference?(model: nn.Module, x: Tensor): Float32Array;
  /** thinker: the node type and the attribute names it must carry */
  thinker: { opType: string; attributes: string[] };
}

function fixed(c: OpCheck): nn.Module {
  const m = c.model();
  linger.traceLayers(m, m, c.input(0));
  linger.init(m, c.init ?? {});
  linger.calibrate(
    m,
    [1, 2, 3, 4].map((s) => c.input(s)),
  );
  m.eval();
  return m;
}

const evalOf = (m: nn.Module, x: Tensor) => tidy(() => m(x) as Tensor).dataSync() as Float32Array;

export function checkOp(c: OpCheck): void {
  const dir = tempDir(`op-${c.name}`);

  if (c.reference) {
    test(`${c.name}: eval equals the integer reference bit for bit`, () => {
      const m = fixed(c);
      const x = c.input(7);
      const d = diff(evalOf(m, x), c.reference!(m, x));
      assert.equal(d.equalFraction, 1, `${d.n} values, max |Δ| ${d.maxAbs}`);
    });
  }

  test(`${c.name}: training passes straight-through gradients to the input`, () => {
    const m = fixed(c);
    m.train();
    const x = c.input(8);
    const g = tf.grad((xr: tf.Tensor) => tf.sum((m(new Tensor(xr)) as Tensor).logical()))(x.logical());
    const v = g.dataSync();
    g.dispose();
    assert.ok(v.every(Number.isFinite), 'finite gradients');
    assert.ok(
      v.some((e) => e !== 0),
      'some gradient reaches the input',
    );
  });

  test(`${c.name}: the qdq export computes the engine's eval in onnxruntime, bit for bit`, async () => {
    const m = fixed(c);
    const file = path.join(dir, 'qdq.onnx');
    await exportOnnx(m, c.input(0), file);
    const s = await session(file);
    for (const seed of [9, 10]) {
      const x = c.input(seed);
      const d = diff(await runSession(s, x), evalOf(m, x));
      assert.equal(d.equalFraction, 1, `seed ${seed}: ${d.n} values, max |Δ| ${d.maxAbs}`);
    }
  });

  test(`${c.name}: the thinker export writes ${c.thinker.opType} with linger's attributes`, () => {
    const m = fixed(c);
    const g = buildOnnxModel(m, c.input(0), { dialect: 'thinker' }).graph!;
    const node = g.node!.find((n) => n.opType === c.thinker.opType);
    assert.ok(node, `a ${c.thinker.opType} node among ${g.node!.map((n) => n.opType).join(', ')}`);
    const names = (node!.attribute ?? []).map((a) => a.name!);
    for (const a of c.thinker.attributes) assert.ok(names.includes(a), `${c.thinker.opType} has '${a}' (has ${names.join(', ')})`);
  });

  test(`${c.name}: a fixed checkpoint rebuilds from a fresh float model and loads strictly`, async () => {
    const m = fixed(c);
    const file = path.join(dir, 'fixed.safetensors');
    await linger.save(m, file);
    const ck = await linger.loadCheckpoint(file);
    const again = c.model();
    linger.applyCheckpointTransforms(again, ck.metadata, c.input(0), file);
    again.loadStateDict(ck.stateDict, { strict: true });
    again.eval();
    const x = c.input(11);
    assert.deepEqual(evalOf(again, x), evalOf(m, x));
    fs.rmSync(dir, { recursive: true, force: true });
  });
}

/** The nodes of a model's graph (tests of single ops read them). */
export const nodesOf = (m: onnx.IModelProto) => m.graph!.node!;
