// Issue 21: a bounded fuzz run of the notebook reader `linger run` uses, like the checkpoint and
// ONNX fuzzers: seeded mutations of a notebook's JSON and bytes either read as a notebook whose
// every source is text and which writes back, or fail with a NotebookFormatError; nothing else.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeNotebook, NotebookFormatError, parseNotebook, serializeNotebook } from '../../../src/engine/notebook/nbformat';
import { experimentNotebook } from '../../../src/engine/notebook/template';

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const VALUES: unknown[] = [null, 0, 42, -1.5, true, '', 'x', [], [1, 2], ['a', 3], {}, { a: 1 }, '\uFFFD', Number.POSITIVE_INFINITY];

/** A JSON-level mutation: one field of one cell (or of the notebook) replaced, removed or retyped. */
function mutateJson(nb: Record<string, unknown>, r: () => number): Record<string, unknown> {
  const copy = JSON.parse(JSON.stringify(nb)) as { cells: Array<Record<string, unknown>>; [k: string]: unknown };
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(r() * xs.length)];
  const target: Record<string, unknown> = r() < 0.15 ? copy : (pick(copy.cells) ?? copy);
  const key = pick(
    target === copy
      ? ['cells', 'metadata', 'nbformat', 'nbformat_minor']
      : ['source', 'cell_type', 'outputs', 'metadata', 'id', 'execution_count'],
  );
  if (r() < 0.2) delete target[key];
  else target[key] = pick(VALUES);
  return copy;
}

test('fuzz: mutated notebooks read cleanly or fail with a NotebookFormatError', () => {
  const base = JSON.parse(serializeNotebook(experimentNotebook({ quick: true }))) as Record<string, unknown>;
  const text = JSON.stringify(base);
  const r = rng(2121);
  const stop = performance.now() + 2500;
  let cases = 0;
  let refused = 0;
  while (performance.now() < stop) {
    let bytes: Buffer;
    if (r() < 0.5) {
      bytes = Buffer.from(JSON.stringify(mutateJson(base, r)));
    } else {
      bytes = Buffer.from(text);
      const at = Math.floor(r() * bytes.length);
      const kind = Math.floor(r() * 3);
      if (kind === 0) bytes[at] = Math.floor(r() * 256);
      else if (kind === 1) bytes = bytes.subarray(0, at);
      else bytes = Buffer.concat([bytes.subarray(0, at), Buffer.from([0xc3]), bytes.subarray(at)]);
    }
    try {
      const nb = parseNotebook(decodeNotebook(bytes, 'fuzz.ipynb'), 'fuzz.ipynb');
      for (const c of nb.cells) assert.equal(typeof c.source, 'string', `case ${cases}`);
      parseNotebook(serializeNotebook(nb));
    } catch (e) {
      assert.ok(e instanceof NotebookFormatError, `case ${cases}: ${String(e)}`);
      assert.match(e.message, /fuzz\.ipynb/);
      refused++;
    }
    cases++;
  }
  assert.ok(cases > 200 && refused > 0, `${cases} cases, ${refused} refused`);
});
