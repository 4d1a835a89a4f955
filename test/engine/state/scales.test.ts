// The module tree's eval scales (what the Graph and Model views show as 2^n and Q-formats) equal
// the scales the layers use in eval, as the quantization report records them (issue 20).
// A quantized input's scale is carried from its producer and shown from there.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { DemoCNN, initBackend, linger, manualSeed, rand } from '../../../src/engine/index';
import { moduleTree } from '../../../src/engine/state/checkpoint';

before(async () => {
  await initBackend();
});

test("a calibrated fixed model's tree carries each Int layer's eval scales x/w/o; a float one none", () => {
  manualSeed(3);
  const m = new DemoCNN();
  assert.ok(
    moduleTree(m).every((e) => e.scales === undefined),
    'float: no scales',
  );
  linger.traceLayers(m, m, rand([1, 1, 28, 28]));
  linger.init(m);
  assert.ok(
    moduleTree(m).every((e) => e.scales === undefined || !('x' in e.scales)),
    'not calibrated: no running values yet',
  );
  linger.calibrate(
    m,
    Array.from({ length: 3 }, () => rand([4, 1, 28, 28])),
  );
  const tree = new Map(moduleTree(m).map((e) => [e.path, e]));
  const rows = linger.quantReport(m, rand([4, 1, 28, 28]));
  assert.ok(rows.length >= 4);
  for (const r of rows) {
    const s = tree.get(r.path)?.scales;
    assert.ok(s, `${r.path} has scales`);
    // x from running_x: the layer's own input scale; a quantized input's carried scale overrides it
    // in eval (the producer's o: the Graph editor shows that one, test/engine/webview)
    if (r.path === 'conv1') assert.equal(s.x, r.scaleX, 'conv1 x (a float input)');
    assert.equal(s.o, r.scaleO, `${r.path} o`);
    if (r.scaleW !== null) assert.equal(s.w, r.scaleW, `${r.path} w`);
  }
});
