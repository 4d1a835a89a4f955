// Out of memory is an error, not an abort (issue #13): the process and every other tensor survive.
// Its own file: the wasm heap it grows to ~3.6 GiB never shrinks, so no other test shares it.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { collectGarbage, DemoCNN, initBackend, memory, OutOfMemoryError, randn, Tensor, zeros } from '../../../src/engine/index';

before(async () => {
  await initBackend();
});

test('allocations beyond the heap throw OutOfMemoryError naming the sizes; afterwards the engine works', (t) => {
  if (memory().backend !== 'wasm') return t.skip('the wasm backend is the one with a bounded heap');
  const m = new DemoCNN().eval();
  const before = (m(randn([2, 1, 28, 28])) as Tensor).dataSync();

  // one request larger than any wasm32 heap
  assert.throws(
    () => zeros([2 ** 31]),
    (e: unknown) =>
      e instanceof OutOfMemoryError &&
      /^out of memory: could not allocate 8\.0 GiB for a tensor \(.* in use by \d+ tensors, wasm heap .* of at most 4 GiB\); use a smaller batch/.test(
        e.message,
      ),
  );

  // many held tensors until the heap is full (in a function of its own, so that nothing on this
  // frame still points at them afterwards)
  const fill = () => {
    const held: Tensor[] = [];
    let error: unknown;
    try {
      for (let i = 0; i < 12; i++) held.push(zeros([2 ** 27])); // 512 MiB each
    } catch (e) {
      error = e;
    }
    // the tensors made before the failure still hold their values
    return { error, count: held.length, firstSum: held[0].sum().item() };
  };
  const { error, count, firstSum } = fill();
  assert.ok(error instanceof OutOfMemoryError, `an OutOfMemoryError, not ${String(error)}`);
  assert.ok(count >= 4, `${count} tensors of 512 MiB fitted first`);
  assert.equal(error.requestedBytes, 2 ** 29);
  assert.ok(error.inUseBytes >= count * 2 ** 29);
  assert.equal(firstSum, 0);
  t.diagnostic(error.message);

  // once they are dropped, the engine runs on
  collectGarbage();
  const after = (m(randn([2, 1, 28, 28])) as Tensor).dataSync();
  assert.equal(after.length, before.length);
  assert.ok(after.every(Number.isFinite));
  assert.ok(memory().bytes < 2 ** 26, 'the released tensors are gone');
});
