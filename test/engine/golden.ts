// Shared by the PyTorch-parity tests: reading golden fixtures (scripts/golden/*.py) and comparing.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { nn, tensor, Tensor } from '../../src/engine/index';

/** A tensor in a fixture: PyTorch's row-major values and shape (int64 marked). */
export interface Fixture {
  shape: number[];
  data: number[];
  dtype?: 'int64';
}
export type FixtureDict = Record<string, Fixture>;

export const GOLDEN = join(__dirname, '..', 'fixtures', 'golden');
export function loadCases<T>(family: string): T[] {
  return (JSON.parse(readFileSync(join(GOLDEN, `${family}.json`), 'utf8')) as { cases: T[] }).cases;
}

/** A fixture as an engine tensor (PyTorch's int64 as int32, like the engine's state dicts). */
export function toTensor(f: Fixture): Tensor {
  return f.dtype === 'int64' ? tensor(Int32Array.from(f.data), f.shape, 'int32') : tensor(Float32Array.from(f.data), f.shape);
}
export function toStateDict(sd: FixtureDict): Record<string, Tensor> {
  return Object.fromEntries(Object.entries(sd).map(([k, v]) => [k, toTensor(v)]));
}

// ---- comparison -----------------------------------------------------------------------------------
export const RTOL = 1e-4;

function multiIndex(flat: number, shape: number[]): string {
  const idx: number[] = [];
  for (let i = shape.length - 1; i >= 0; i--) {
    idx.unshift(flat % shape[i]);
    flat = Math.floor(flat / shape[i]);
  }
  return `[${idx.join(', ')}]`;
}

/** Element-wise |a − b| ≤ RTOL·max(1, |b|); on failure names the worst element. */
export function assertClose(actual: ArrayLike<number>, actualShape: number[], expected: Fixture, what: string): void {
  assert.deepEqual(actualShape, expected.shape, `${what}: shape [${actualShape.join(', ')}], PyTorch [${expected.shape.join(', ')}]`);
  assert.equal(actual.length, expected.data.length, `${what}: ${actual.length} values, PyTorch ${expected.data.length}`);
  let worst = -1;
  let worstRatio = 0;
  let bad = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i];
    const b = Math.fround(expected.data[i]);
    const ratio = Number.isFinite(a) ? Math.abs(a - b) / (RTOL * Math.max(1, Math.abs(b))) : Infinity;
    if (ratio > 1) bad++;
    if (ratio > worstRatio || worst < 0) {
      worst = i;
      worstRatio = ratio;
    }
  }
  if (bad > 0) {
    const a = actual[worst];
    const b = Math.fround(expected.data[worst]);
    assert.fail(
      `${what}: ${bad} of ${actual.length} values out of tolerance; worst at ${multiIndex(worst, expected.shape)}: ` +
        `engine ${a}, PyTorch ${b} (|diff| ${Math.abs(a - b).toExponential(3)} > ${(RTOL * Math.max(1, Math.abs(b))).toExponential(3)})`,
    );
  }
}

/** Compares every entry of a fixture state dict with the module's (num_batches_tracked exactly). */
export function assertStateDict(model: nn.Module, expected: FixtureDict, what: string): void {
  const sd = model.stateDict();
  for (const [k, e] of Object.entries(expected)) {
    const t = sd[k];
    assert.ok(t, `${what}: the model has no state '${k}'`);
    if (e.dtype === 'int64') assert.deepEqual(Array.from(t.dataSync()), e.data, `${what} ${k}`);
    else assertClose(t.dataSync(), t.shape, e, `${what} ${k}`);
  }
}
