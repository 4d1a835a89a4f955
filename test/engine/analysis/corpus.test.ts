// Issue 6's acceptance corpus: every expected diagnostic is found at its line, nothing else is.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { LoadOrderAnalyzer, languageForPath } from '../../../src/engine/analysis';
import { actual, corpusFiles, expected } from './corpus';

const files = corpusFiles();
let analyzer: LoadOrderAnalyzer;
before(async () => {
  analyzer = await LoadOrderAnalyzer.create();
});

test('the corpus has at least 40 scripts in Python and TypeScript, the seed snippets and notebooks', () => {
  assert.ok(files.length >= 40, `${files.length} fixtures`);
  const lang = (n: string) => (n.endsWith('.ipynb') ? 'notebook' : languageForPath(n));
  const count = (l: string) => files.filter((f) => lang(f.name) === l).length;
  assert.ok(count('python') >= 25, `python: ${count('python')}`);
  assert.ok(count('typescript') + count('tsx') + count('javascript') >= 12, 'typescript/javascript');
  assert.ok(count('notebook') >= 2, 'notebooks');
  for (const seed of [
    'seed_1_verbatim.py',
    'seed_2_verbatim.py',
    'seed_2_not_ok.py',
    'seed_3_verbatim.py',
    'seed_3_not_ok_first.py',
    'seed_3_not_ok_second.py',
  ]) {
    assert.ok(
      files.some((f) => f.name === seed),
      seed,
    );
  }
});

describe('corpus: expected diagnostics, at the right line, and nothing else', () => {
  for (const f of files) {
    test(f.name, () => {
      assert.deepEqual(actual(analyzer, f), expected(f));
    });
  }
});

test('the seed snippets: verbatim nothing, each NOT OK line uncommented LINGER001 (SPEC §9)', () => {
  const byName = new Map(files.map((f) => [f.name, f]));
  for (const n of ['seed_1_verbatim.py', 'seed_2_verbatim.py', 'seed_3_verbatim.py'])
    assert.deepEqual(actual(analyzer, byName.get(n)!), [], n);
  assert.deepEqual(actual(analyzer, byName.get('seed_2_not_ok.py')!), ['4:LINGER001']);
  assert.deepEqual(actual(analyzer, byName.get('seed_3_not_ok_first.py')!), ['4:LINGER001']);
  assert.deepEqual(actual(analyzer, byName.get('seed_3_not_ok_second.py')!), ['6:LINGER001']);
  assert.deepEqual(actual(analyzer, byName.get('seed_3_not_ok_both.py')!), ['4:LINGER001', '6:LINGER001']);
});

test('skipping Python code without a linger keyword changes no result', () => {
  for (const f of files) assert.deepEqual(actual(analyzer, f, { prefilter: false }), actual(analyzer, f), f.name);
});
