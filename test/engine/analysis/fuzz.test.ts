// Issue 21: a bounded fuzz run of the load-order analyzer, like the checkpoint and ONNX fuzzers:
// seeded mutations of the corpus (byte flips, splices, NULs, lone CRs, deep nesting, invalid
// UTF-8, notebooks cut and retyped) go through `linger check`'s reader and the analyzer. Every
// case ends in well-formed diagnostics or a LINGER000 naming why, within the deadline; nothing
// throws, nothing hangs.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  LoadOrderAnalyzer,
  languageForPath,
  SEVERITY,
  type LoadOrderDiagnostic,
  type NotebookDiagnostic,
} from '../../../src/engine/analysis';
import { corpusFiles } from './corpus';
import { prng as rng } from '../prng';

let analyzer: LoadOrderAnalyzer;
before(async () => {
  analyzer = await LoadOrderAnalyzer.create();
});

const INSERTS = [
  '\0',
  '\r',
  '(',
  ')',
  '"""',
  "'",
  '\\',
  '{',
  '}',
  '\n    ',
  'linger.init(model)\n',
  'model.load_state_dict(sd)\n',
  '\uFFFD',
  '#',
  '%%bash\n',
  '\t',
];

function mutate(text: string, r: () => number): string {
  let t = text;
  const n = 1 + Math.floor(r() * 4);
  for (let k = 0; k < n; k++) {
    const at = Math.floor(r() * (t.length + 1));
    const kind = Math.floor(r() * 5);
    if (kind === 0) t = t.slice(0, at) + INSERTS[Math.floor(r() * INSERTS.length)] + t.slice(at);
    else if (kind === 1) t = t.slice(0, at) + t.slice(at + 1 + Math.floor(r() * 40));
    else if (kind === 2) t = t.slice(0, at);
    else if (kind === 3) t = t.slice(0, at) + '('.repeat(200 + Math.floor(r() * 3000)) + t.slice(at);
    else t = t.replace(/\n/g, r() < 0.5 ? '\r' : '\r\n');
  }
  return t;
}

function wellFormed(d: LoadOrderDiagnostic | NotebookDiagnostic, what: string): void {
  assert.equal(d.severity, SEVERITY[d.code], what);
  assert.ok(d.message.length > 20, what);
  if (d.code === 'LINGER000') assert.match(d.message, /^could not analyse: /, what);
  assert.ok(d.range.start.line >= 0 && d.range.start.col >= 0, what);
}

test('fuzz: mutated scripts and notebooks end in diagnostics or a LINGER000, within the deadline', () => {
  const files = corpusFiles();
  const r = rng(21);
  const stop = performance.now() + 4000; // bounded: a few seconds of the suite
  let cases = 0;
  let notAnalysed = 0;
  while (performance.now() < stop) {
    const f = files[Math.floor(r() * files.length)];
    const text = mutate(f.text, r);
    const what = `case ${cases} (${f.name})`;
    const t0 = performance.now();
    const diags: Array<LoadOrderDiagnostic | NotebookDiagnostic> = f.notebook
      ? analyzer.analyzeNotebook(r() < 0.2 ? JSON.stringify(JSON.parse(f.text).cells.map(() => (r() < 0.5 ? null : 3))) : text, {
          timeoutMs: 500,
        })
      : analyzer.analyze(text, languageForPath(f.name)!, { timeoutMs: 500 });
    assert.ok(performance.now() - t0 < 2500, `${what}: ${(performance.now() - t0).toFixed(0)} ms`);
    for (const d of diags) wellFormed(d, what);
    if (diags.some((d) => d.code === 'LINGER000')) notAnalysed++;
    cases++;
  }
  assert.ok(cases > 50, `${cases} cases`);
  assert.ok(notAnalysed > 0, 'some cases are reported as not analysed');
});
