// The preferred quick fix of LINGER001/002 moves the load after the last transform of its model.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { applyEdits, LoadOrderAnalyzer, languageForPath, type CellTextEdit } from '../../../src/engine/analysis';
import { FIXTURES } from './corpus';

const dir = path.join(FIXTURES, 'quickfix');
let analyzer: LoadOrderAnalyzer;
before(async () => {
  analyzer = await LoadOrderAnalyzer.create();
});

for (const name of fs
  .readdirSync(dir)
  .filter((n) => n.includes('.before.'))
  .sort()) {
  test(`quick fix: ${name} → ${name.replace('.before.', '.after.')}`, () => {
    const text = fs.readFileSync(path.join(dir, name), 'utf8');
    const want = fs.readFileSync(path.join(dir, name.replace('.before.', '.after.')), 'utf8');
    const lang = languageForPath(name)!;
    const diags = analyzer.analyze(text, lang).filter((d) => d.code === 'LINGER001' || d.code === 'LINGER002');
    assert.equal(diags.length, 1, JSON.stringify(diags));
    const fix = diags[0].fix;
    assert.ok(fix, 'a fix is offered');
    assert.match(fix.title, /^Move .+\(\) after .+ \(line \d+\)$/);
    const fixed = applyEdits(text, fix.edits);
    assert.equal(fixed, want);
    // the fixed file is clean
    assert.deepEqual(
      analyzer.analyze(fixed, lang).map((d) => d.code),
      [],
    );
  });
}

test('no fix when the load shares its line with other code, or moving it would move a transform', () => {
  const sameLine =
    'import linger\nmodel = linger.trace_layers(model, model, x)\nprint(1); model.load_state_dict(sd)\nmodel = linger.init(model)\n';
  const [d1] = analyzer.analyze(sameLine, 'python');
  assert.equal(d1.code, 'LINGER001');
  assert.equal(d1.fix, undefined);
  const withTransform =
    'import linger\nmodel = linger.trace_layers(model, model, x)\nif a:\n    model.load_state_dict(sd)\n    model = linger.normalize_layers(model)\nmodel = linger.init(model)\n';
  const [d2] = analyzer.analyze(withTransform, 'python');
  assert.equal(d2.code, 'LINGER001');
  assert.equal(d2.range.start.line, 3);
  // the if holds normalize_layers too: moving it would reorder transforms; moving the load out of it would change when it runs
  assert.equal(d2.fix, undefined);
});

test('a notebook fix moves the load into the cell of the last transform', () => {
  const nb = {
    cells: [
      { cell_type: 'code', source: ['import linger\n', 'model = linger.trace_layers(model, model, x)'] },
      { cell_type: 'markdown', source: ['notes'] },
      { cell_type: 'code', source: ['model.load_state_dict(sd)\n', 'train(model)'] },
      { cell_type: 'code', source: ['model = linger.init(model)'] },
    ],
    metadata: { kernelspec: { language: 'python' } },
  };
  const [d] = analyzer.analyzeNotebook(JSON.stringify(nb));
  assert.equal(d.code, 'LINGER001');
  assert.equal(d.cell, 2);
  assert.deepEqual(d.range, { start: { line: 0, col: 0 }, end: { line: 0, col: 25 } });
  assert.match(d.message, /between linger\.trace_layers \(cell 1, line 2\) and linger\.init \(cell 4, line 1\)/);
  assert.ok(d.fix);
  const cells = nb.cells.map((c) => c.source.join(''));
  const byCell = new Map<number, CellTextEdit[]>();
  for (const e of d.fix.edits) byCell.set(e.cell, [...(byCell.get(e.cell) ?? []), e]);
  for (const [cell, edits] of byCell) cells[cell] = applyEdits(cells[cell], edits);
  assert.deepEqual(cells, [
    'import linger\nmodel = linger.trace_layers(model, model, x)',
    'notes',
    'train(model)',
    'model = linger.init(model)\nmodel.load_state_dict(sd)',
  ]);
});
