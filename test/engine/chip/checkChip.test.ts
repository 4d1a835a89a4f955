// linger.checkChip and the thinker export's refusal (docs/chip-rules.md): the API the extension and
// the CLI read, at every stage, and the messages a user sees.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initBackend, linger, manualSeed, nn, randn, Tensor } from '../../../src/engine/index';
import { buildOnnxModel } from '../../../src/engine/onnx/index';
import { PLATFORMS } from '../../../src/engine/chip/index';

class Stem extends nn.Module {
  features = new nn.Sequential(new nn.Conv2d(1, 4, 7, { stride: 2, padding: 3 }), new nn.ReLU());
  fc = new nn.Linear(4 * 8 * 8, 3);
  forward(x: Tensor): Tensor {
    return this.fc((this.features(x) as Tensor).flatten(1));
  }
}

before(async () => {
  await initBackend();
});

describe('linger.checkChip', () => {
  test('a 7×7 conv: one error on its module path, with the rule, value, limit, tpacker source and a suggestion', () => {
    manualSeed(1);
    const m = new Stem();
    const r = linger.checkChip(m, [1, 1, 16, 16], { platform: 'venus' });
    assert.equal(r.platform, 'venus');
    const errors = r.findings.filter((f) => f.severity === 'error');
    assert.equal(errors.length, 1);
    const f = errors[0];
    assert.equal(f.layer, 'features.0');
    assert.equal(f.rule, 'conv-kernel');
    assert.equal(f.value, 7);
    assert.deepEqual(f.limit, [1, 2, 3, 4, 5]);
    assert.equal(f.source, 'thinker/resource_packer/ops/Conv2dInt.py:32');
    assert.match(f.suggestion!, /3×3/);
    assert.equal(m.stage(), 'float', 'the model is not changed');
    assert.equal(m.training, true, 'its train mode is restored');
  });

  test('the same verdict at every stage: float, traced, fixed, and the exported ONNX', () => {
    manualSeed(2);
    const m = new Stem();
    const x = randn([1, 1, 16, 16]);
    const names = () =>
      linger
        .checkChip(m, x)
        .findings.filter((f) => f.severity === 'error')
        .map((f) => `${f.layer} ${f.rule}`);
    assert.deepEqual(names(), ['features.0 conv-kernel']);
    linger.traceLayers(m, m, x);
    assert.deepEqual(names(), ['features.0 conv-kernel']);
    linger.init(m);
    linger.calibrate(m, [randn([2, 1, 16, 16])]);
    assert.deepEqual(names(), ['features.0 conv-kernel']);
    m.eval();
    const proto = buildOnnxModel(m, x, { dialect: 'thinker' });
    assert.deepEqual(
      linger.checkOnnxModel(proto).findings.map((f) => `${f.layer} ${f.rule}`),
      ['features.0 conv-kernel'],
    );
  });

  test('memory: per-layer bytes and a peak, against the platform sizes', () => {
    manualSeed(3);
    const r = linger.checkChip(new nn.Sequential(new nn.Conv2d(1, 4, 3, { padding: 1 }), new nn.ReLU()), [1, 1, 8, 8]);
    assert.deepEqual(r.findings, []);
    const conv = r.memory!.layers.find((l) => l.op === 'Conv2dInt')!;
    assert.equal(conv.layer, '0');
    assert.equal(conv.activationBytes, 4 * 8 * 8); // int8 codes
    // weights padded to 2 output and 8 input channels (ops/Conv2dInt.py:399-401), plus the int32 bias
    assert.equal(conv.weightBytes, 4 * 8 * 9 + 4 * 4);
    assert.equal(r.memory!.sramBytes, 640 * 1024);
  });

  test("memory: a plan over the chip's SRAM is tpacker's last refusal (_tMemory.py:44)", () => {
    // a 3×3 conv on a 256×256 input: tpacker v1.1.0 stops with "SHARE-MEM to be allocated was
    // 721056, exceed 655360 Byte" (measured with scripts/conformance/chip_run.py's tpacker)
    manualSeed(5);
    const m = new nn.Sequential(new nn.Conv2d(1, 2, 3, { padding: 1 }));
    const r = linger.checkChip(m, [1, 1, 256, 256]);
    const f = r.findings.find((x) => x.rule === 'memory-sram')!;
    assert.equal(f.severity, 'error');
    assert.equal(f.value, 721056);
    assert.equal(f.limit, 640 * 1024);
    assert.equal(r.memory!.sramPeakBytes, 721056);
    assert.equal(linger.checkChip(m, [1, 1, 128, 128]).findings.length, 0);
  });

  test('what tpacker cannot pack for other reasons: no constant at all, a MaxPool on the float input', () => {
    // both found by random networks packed by tpacker v1.1.0: two AvgPools alone fail in its
    // serializer ("cannot unpack non-iterable NoneType"); a MaxPool stays float after init
    manualSeed(6);
    const pools = linger.checkChip(new nn.Sequential(new nn.AvgPool2d(2), new nn.AvgPool2d(2)), [1, 2, 8, 8]);
    assert.deepEqual(
      pools.findings.map((f) => `${f.rule} ${f.severity}`),
      ['no-constants error'],
    );
    const first = linger.checkChip(new nn.Sequential(new nn.MaxPool2d(2), new nn.Conv2d(2, 2, 3)), [1, 2, 8, 8]);
    assert.deepEqual(
      first.findings.map((f) => `${f.layer} ${f.rule}`),
      ['0 pool-input-int8'],
    );
  });

  test('a platform is a table: arcs takes a dilated conv venus refuses', () => {
    manualSeed(4);
    const m = new nn.Sequential(new nn.Conv2d(2, 2, 3, { padding: 2, dilation: 2 }));
    assert.equal(linger.checkChip(m, [1, 2, 9, 9], { platform: 'venus' }).findings[0].rule, 'conv-dilation');
    assert.deepEqual(linger.checkChip(m, [1, 2, 9, 9], { platform: 'arcs' }).findings, []);
    assert.deepEqual(Object.keys(PLATFORMS).sort(), ['arcs', 'venus', 'venusA']);
    assert.throws(() => linger.checkChip(m, [1, 2, 9, 9], { platform: 'mars' }), /unknown platform 'mars' \(venus, arcs, venusA\)/);
  });
});

describe('the thinker export refuses what tpacker would', () => {
  test('exportOnnx with the thinker dialect throws the findings and writes no file', async () => {
    manualSeed(5);
    const m = new Stem();
    const x = randn([1, 1, 16, 16]);
    linger.traceLayers(m, m, x);
    linger.init(m);
    linger.calibrate(m, [randn([2, 1, 16, 16])]);
    m.eval();
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'chip-')), 'm.onnx');
    await assert.rejects(linger.exportOnnx(m, x, file, { dialect: 'thinker' }), (e: Error) => {
      assert.equal(e.name, 'ChipRulesError');
      assert.match(e.message, /tpacker would refuse it/);
      assert.match(
        e.message,
        /error: features\.0 \(Conv2dInt\): kernel 7×7 .* \[conv-kernel; thinker\/resource_packer\/ops\/Conv2dInt\.py:32\]/,
      );
      assert.match(e.message, /suggestion: split it into 3 stacked 3×3 convs/);
      return true;
    });
    assert.equal(fs.existsSync(file), false);
    // the qdq dialect is for onnxruntime, not the chip: written
    await linger.exportOnnx(m, x, file);
    assert.equal(fs.existsSync(file), true);
  });
});
