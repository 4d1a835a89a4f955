// The wasm backend's Slice/SplitV/Unpack replacements (backend/wasmSlice.ts): the same values as
// a plain-JS slice of the data, for every rank, dtype and position, and no copy of the whole input.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend } from '../../src/engine/index';
import { tf } from '../../src/engine/backend/tf';
import { wasmSliceInstalled } from '../../src/engine/backend/wasmSlice';

let backend = '';
before(async () => {
  backend = await initBackend();
});

/** x[begin : begin + size] from x's flat data, row-major. */
function reference(data: ArrayLike<number>, shape: number[], begin: number[], size: number[]): number[] {
  const strides = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
  const out: number[] = [];
  const n = size.reduce((a, b) => a * b, 1);
  for (let k = 0; k < n; k++) {
    let rest = k,
      off = 0;
    for (let d = size.length - 1; d >= 0; d--) {
      off += (begin[d] + (rest % size[d])) * strides[d];
      rest = Math.floor(rest / size[d]);
    }
    out.push(data[off]);
  }
  return out;
}

test('slice, split and unstack equal a plain-JS slice for ranks 1–5, float32, int32 and bool', () => {
  let seed = 7;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  let checked = 0;
  for (let rank = 1; rank <= 5; rank++) {
    for (let trial = 0; trial < 12; trial++) {
      const shape = Array.from({ length: rank }, () => 1 + rnd(5));
      const n = shape.reduce((a, b) => a * b, 1);
      const dtype = (['float32', 'int32', 'bool'] as const)[trial % 3];
      const data = Array.from({ length: n }, (_, i) => (dtype === 'bool' ? i % 2 : dtype === 'int32' ? i - 7 : i * 0.5 - 3));
      const x = tf.tensor(data, shape, dtype);
      const begin = shape.map((s) => rnd(s));
      const size = shape.map((s, i) => 1 + rnd(s - begin[i]));
      assert.deepEqual(
        Array.from(tf.slice(x, begin, size).dataSync()),
        reference(data, shape, begin, size),
        `${dtype} [${shape}] begin [${begin}] size [${size}]`,
      );
      const axis = rnd(rank);
      const parts = tf.unstack(x, axis);
      parts.forEach((p, i) => {
        const b = shape.map((_, d) => (d === axis ? i : 0)),
          s = shape.map((v, d) => (d === axis ? 1 : v));
        assert.deepEqual(Array.from(p.dataSync()), reference(data, shape, b, s));
        assert.deepEqual(
          p.shape,
          shape.filter((_, d) => d !== axis),
        );
      });
      const first = 1 + rnd(shape[axis]);
      const sizes = first < shape[axis] ? [first, shape[axis] - first] : [first];
      let at = 0;
      for (const p of tf.split(x, sizes, axis)) {
        const b = shape.map((_, d) => (d === axis ? at : 0)),
          s = shape.map((v, d) => (d === axis ? p.shape[d] : v));
        assert.deepEqual(Array.from(p.dataSync()), reference(data, shape, b, s));
        at += p.shape[axis];
      }
      checked++;
      tf.dispose([x, ...parts]);
    }
  }
  assert.equal(checked, 60);
});

test('the replacement is what runs on wasm, and slices leave no tensors behind', () => {
  if (backend !== 'wasm') return;
  assert.ok(wasmSliceInstalled());
  const x = tf.randomNormal([28, 64, 192]);
  const before = tf.memory().numTensors;
  tf.tidy(() => {
    for (let t = 0; t < 28; t++) tf.slice(x, [t, 0, 0], [1, 64, 192]);
    tf.unstack(x);
    tf.split(x, 4, 0);
  });
  assert.equal(tf.memory().numTensors, before);
  x.dispose();
});
