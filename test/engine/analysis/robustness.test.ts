// Broken code never makes the analyzer throw (issue 6): every corpus file, truncated and garbled at
// every 37th byte, is analysed without an exception and with well-formed results.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  LoadOrderAnalyzer,
  SEVERITY,
  languageForPath,
  notebookCells,
  type LoadOrderDiagnostic,
  type SourceLanguage,
} from '../../../src/engine/analysis';
import { corpusFiles, FIXTURES } from './corpus';

const GARBAGE = [0x28, 0x29, 0x22, 0x27, 0x3a, 0x7b, 0x7d, 0x0a, 0x23, 0x5c, 0x00, 0xff, 0x60, 0x2f, 0x2a, 0x3d, 0x20, 0x09, 0x5b, 0x2c];
const STEP = 37;

let analyzer: LoadOrderAnalyzer;
before(async () => {
  analyzer = await LoadOrderAnalyzer.create();
});

const files = [...corpusFiles(), ...corpusFiles(path.join(FIXTURES, 'quickfix'))];

/** The text truncated at, and garbled at, every 37th byte (as UTF-8 bytes). */
function* variants(text: string): Generator<[string, string]> {
  const bytes = Buffer.from(text, 'utf8');
  for (let k = 0; k <= bytes.length; k += STEP) {
    yield [`truncated at ${k}`, bytes.subarray(0, k).toString('utf8')];
    if (k < bytes.length) {
      const g = Buffer.from(bytes);
      g[k] = GARBAGE[(k / STEP) % GARBAGE.length];
      yield [`garbled at ${k}`, g.toString('utf8')];
    }
  }
}

function checkWellFormed(text: string, diags: LoadOrderDiagnostic[], what: string): void {
  const lines = text.split('\n');
  const inside = (p: { line: number; col: number }) => p.line >= 0 && p.line < lines.length && p.col >= 0 && p.col <= lines[p.line].length;
  for (const d of diags) {
    assert.equal(d.severity, SEVERITY[d.code], what);
    assert.ok(d.message.length > 20, what);
    assert.ok(inside(d.range.start) && inside(d.range.end), `${what}: range ${JSON.stringify(d.range)}`);
    for (const e of d.fix?.edits ?? [])
      assert.ok(inside(e.range.start) && inside(e.range.end), `${what}: fix edit ${JSON.stringify(e.range)}`);
  }
}

test('truncating or garbling any corpus file at every 37th byte never throws', () => {
  let runs = 0;
  for (const f of files) {
    if (f.notebook) continue;
    const lang = languageForPath(f.name)!;
    for (const [how, text] of variants(f.text)) {
      for (const prefilter of [true, false]) {
        const diags = analyzer.analyze(text, lang, { prefilter });
        checkWellFormed(text, diags, `${f.name} ${how}`);
        runs++;
      }
    }
  }
  assert.ok(runs > 1000, `${runs} analyses`);
});

test('notebooks: broken JSON gives one LINGER000, broken cells never throw', () => {
  for (const f of files.filter((x) => x.notebook)) {
    for (const [how, json] of variants(f.text)) {
      const diags = analyzer.analyzeNotebook(json);
      assert.ok(Array.isArray(diags), `${f.name} ${how}`);
      let parses = true;
      try {
        JSON.parse(json);
      } catch {
        parses = false;
      }
      if (!parses)
        assert.deepEqual(
          diags.map((d) => [d.code, d.cell]),
          [['LINGER000', -1]],
          `${f.name} ${how}`,
        );
    }
    const cells = notebookCells(JSON.parse(f.text));
    cells.forEach((cell, i) => {
      for (const [how, text] of variants(cell.text)) {
        const broken = cells.map((c, j) => (j === i ? { ...c, text } : c));
        for (const d of analyzer.analyzeCells(broken)) {
          assert.ok(d.cell >= 0 && d.cell < cells.length, `${f.name} cell ${i} ${how}`);
        }
      }
    });
  }
});

test('an internal failure is contained: nonsense input is reported as not analysed, never thrown', () => {
  const codes = (ds: Array<{ code: string; message: string }>) => ds.map((d) => `${d.code}: ${d.message}`);
  assert.deepEqual(analyzer.analyze('linger.init(model)', 'cobol' as SourceLanguage), []); // one keyword: nothing to find
  assert.deepEqual(codes(analyzer.analyze('linger.init(m)\nlinger.init(m)', 'cobol' as SourceLanguage)), [
    "LINGER000: could not analyse: no grammar for the language 'cobol'",
  ]);
  assert.deepEqual(codes(analyzer.analyze(undefined as unknown as string, 'python')), [
    'LINGER000: could not analyse: the input is not text',
  ]);
  assert.deepEqual(
    analyzer.analyzeCells([{ text: undefined as unknown as string, language: 'python' }]).map((d) => [d.code, d.cell]),
    [['LINGER000', 0]],
  );
  assert.deepEqual(codes(analyzer.analyzeNotebook('{"cells": 3}')), [
    'LINGER000: could not analyse: this is not a Jupyter notebook: it has no list of cells',
  ]);
  assert.deepEqual(
    analyzer.analyzeNotebook({ cells: [null, { cell_type: 'code' }] }).map((d) => [d.code, d.cell]),
    [
      ['LINGER000', 0],
      ['LINGER000', 1],
    ],
  );
});

test('pathological inputs: deep nesting, huge lines, binary data', () => {
  const deep = 'import linger\n' + 'x = ' + '('.repeat(5000) + 'linger.init(model)' + ')'.repeat(5000) + '\n';
  analyzer.analyze(deep, 'python');
  const ifs =
    'import linger\n' +
    Array.from({ length: 300 }, (_, i) => ' '.repeat(i * 4) + 'if a:\n').join('') +
    ' '.repeat(1200) +
    'model.load_state_dict(sd)\nlinger.init(model)\n';
  assert.deepEqual(
    analyzer.analyze(ifs, 'python').map((d) => d.code),
    ['LINGER002'],
  );
  const binary = fs.readFileSync(process.execPath).subarray(0, 30_000).toString('latin1') + '\nlinger.init(m)';
  analyzer.analyze(binary, 'python');
  analyzer.analyze(binary, 'typescript');
});

test('a parse over its time budget gives up with a LINGER000, and the next analysis starts afresh', () => {
  const huge = 'import linger\n' + 'x = [' + '1, '.repeat(300_000) + ']\nlinger.init(m)\nlinger.init(m)\n';
  const t0 = performance.now();
  assert.deepEqual(
    analyzer.analyze(huge, 'python', { timeoutMs: 1, prefilter: false }).map((d) => `${d.code}: ${d.message}`),
    ['LINGER000: could not analyse: parsing took longer than 1 ms (a minified or generated file?); no rule was checked'],
  );
  assert.ok(performance.now() - t0 < 2000);
  assert.deepEqual(
    analyzer.analyze('import linger\nlinger.init(m)\nlinger.init(m)\n', 'python').map((d) => d.code),
    ['LINGER004'],
  );
});
