// The benchmark runs (its number is reported, not asserted: SPEC §10), and on its 5,000-line
// script the prefilter finds exactly what a full parse finds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LoadOrderAnalyzer } from '../../../src/engine/analysis';
import { benchAnalyzer, benchScript } from '../../../src/engine/analysis/bench';

test('benchAnalyzer analyses a 5,000-line Python linger script', async (t) => {
  const r = await benchAnalyzer({ runs: 3, warmup: 1 });
  assert.ok(r.lines >= 5000, `${r.lines} lines`);
  assert.ok(Number.isFinite(r.ms) && r.ms > 0);
  assert.ok(r.diagnostics > 50, `${r.diagnostics} diagnostics`);
  t.diagnostic(
    `${r.lines} lines in ${r.ms.toFixed(1)} ms (median of 3 runs after 1 warm-up; node --import tsx src/engine/analysis/bench.ts runs the full benchmark)`,
  );
});

test('on the benchmark script, skipping keyword-free functions changes nothing', async () => {
  const analyzer = await LoadOrderAnalyzer.create();
  const text = benchScript(5000);
  const fast = analyzer.analyze(text, 'python');
  const full = analyzer.analyze(text, 'python', { prefilter: false });
  assert.deepEqual(fast, full);
  const codes = new Set(fast.map((d) => d.code));
  assert.deepEqual([...codes].sort(), ['LINGER001', 'LINGER002']);
});
