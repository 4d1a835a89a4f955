// The op registry (linger/ops/registry.ts): every module finds its definition through the nearest
// registered class, user subclasses included; every op has both export dialects; the lists and
// flags init and replay use come from the op definitions.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend, nn } from '../../../src/engine/index';
import '../../../src/engine/linger/ops';
import { functionFlags, intOpOf, intOps, isFloatOnly, opLists, optInNames, replacementOf } from '../../../src/engine/linger/ops/registry';
import { withoutInit } from '../../../src/engine/nn/init';

before(async () => {
  await initBackend();
});

describe('the op registry', () => {
  test('a float layer finds the op that replaces it; an Int layer (which extends it) finds itself', () => {
    const conv = new nn.Conv2d(1, 2, 3);
    assert.equal(replacementOf(conv)?.def.name, 'Conv2dInt');
    assert.equal(intOpOf(conv), undefined);
    const q = withoutInit(() => new nn.Conv2dInt(1, 2, 3));
    assert.equal(intOpOf(q)?.name, 'Conv2dInt');
    assert.equal(replacementOf(q), undefined, 'an Int layer is not replaced again');
  });
  test("a user's subclass of a float layer is replaced like its base, and of an Int layer found as it", () => {
    class MyConv extends nn.Conv2d {}
    class MyLinearInt extends nn.LinearInt {}
    assert.equal(replacementOf(new MyConv(1, 2, 3))?.def.name, 'Conv2dInt');
    assert.equal(intOpOf(withoutInit(() => new MyLinearInt(2, 3)))?.name, 'LinearInt');
  });
  test('the nearer registration wins: NormalizeConvBN2d is fused (folded), not a plain conv', () => {
    const r = replacementOf(withoutInit(() => new nn.NormalizeConvBN2d(new nn.Conv2d(1, 2, 3), new nn.BatchNorm2d(2))));
    assert.equal(r?.def.name, 'Conv2dInt');
    assert.equal(r?.replacement.float, nn.NormalizeConvBN2d);
  });
  test('float-only layers and unknown modules', () => {
    assert.ok(isFloatOnly(new nn.Softmax(1)));
    assert.equal(replacementOf(new nn.ReLU()), undefined);
  });
  test('every op has a name, an Int class and both export dialects', () => {
    assert.ok(intOps().length >= 18);
    for (const d of intOps()) {
      assert.equal(typeof d.lower.qdq, 'function', `${d.name} qdq`);
      assert.equal(typeof d.lower.thinker, 'function', `${d.name} thinker`);
      assert.equal(d.intClass.name, d.name, `${d.name}'s class is named as linger names it`);
    }
  });
  test("init's options and replay's lists come from the definitions", () => {
    assert.deepEqual(optInNames().sort(), ['Embedding', 'LayerNorm']);
    assert.deepEqual(functionFlags().sort(), ['bmm', 'channel_shuffle']);
    assert.deepEqual(
      opLists()
        .map((l) => l.list)
        .sort(),
      ['linger_bmm', 'linger_iq'],
    );
  });
});
