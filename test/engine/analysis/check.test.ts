// `linger check`: output format, exit codes, JSON, globs and directories.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expandGlob, runCheck, type CheckResult } from '../../../src/engine/cli/check';
import { FIXTURES } from './corpus';

function tmpTree(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'linger-check-'));
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), text);
  }
  return dir;
}

async function check(...args: string[]): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const code = await runCheck(args, (s) => lines.push(s));
  return { code, out: lines.join('\n') };
}

const BAD =
  'import linger\nmodel = MyNet()\nmodel = linger.trace_layers(model, model, x)\nmodel.load_state_dict(sd)\nmodel = linger.init(model)\n';
const WARN = 'import linger\nmodel = MyNet()\nmodel.load_state_dict(sd)\nmodel = linger.init(model)\n';
const GOOD = 'import linger\nmodel = linger.init(MyNet())\nmodel.load_state_dict(sd)\n';

test('an error prints file:line:col: error LINGER001: message and exits 1', async () => {
  const dir = tmpTree({ 'bad.py': BAD });
  const file = path.join(dir, 'bad.py');
  const r = await check(file);
  assert.equal(r.code, 1);
  const [first, summary] = r.out.split('\n');
  assert.equal(
    first,
    `${file}:4:1: error LINGER001: model.load_state_dict() runs between linger.trace_layers (line 3) and linger.init (line 5) ` +
      'on the same model: load the state dict after the last transform, or the next transform rebuilds the layers and the loaded weights are lost',
  );
  assert.equal(summary, '1 file checked: 1 error, 0 warnings');
});

test('warnings alone and clean files exit 0', async () => {
  const dir = tmpTree({ 'warn.py': WARN, 'good.py': GOOD });
  const r = await check(path.join(dir, 'warn.py'), path.join(dir, 'good.py'));
  assert.equal(r.code, 0);
  assert.match(r.out, /warn\.py:3:1: warning LINGER002: model\.load_state_dict\(\) runs before linger\.init \(line 4\)/);
  assert.match(r.out, /2 files checked: 0 errors, 1 warning$/);
});

test('--format json prints an array with 1-based positions, ranges and fixes', async () => {
  const dir = tmpTree({ 'bad.py': BAD, 'good.py': GOOD });
  const r = await check('--format', 'json', path.join(dir, 'bad.py'), path.join(dir, 'good.py'));
  assert.equal(r.code, 1);
  const results = JSON.parse(r.out) as CheckResult[];
  assert.equal(results.length, 1);
  const [d] = results;
  assert.equal(d.file, path.join(dir, 'bad.py'));
  assert.deepEqual([d.line, d.column, d.endLine, d.endColumn, d.code, d.severity], [4, 1, 4, 26, 'LINGER001', 'error']);
  assert.deepEqual(d.range, { start: { line: 3, col: 0 }, end: { line: 3, col: 25 } });
  assert.ok(d.fix && d.fix.edits.length === 2);
  const empty = await check('--format=json', path.join(dir, 'good.py'));
  assert.equal(empty.code, 0);
  assert.deepEqual(JSON.parse(empty.out), []);
});

test('directories recurse into source files and notebooks; node_modules and dot-folders are skipped', async () => {
  const nb = JSON.stringify({
    cells: [
      { cell_type: 'markdown', source: '# x' },
      { cell_type: 'code', source: BAD },
    ],
    metadata: {},
  });
  const dir = tmpTree({
    'a/train.py': BAD,
    'a/b/quant.ts': 'import { linger } from "linger-studio";\nlinger.init(m);\nlinger.init(m);\n',
    'a/nb.ipynb': nb,
    'a/readme.md': BAD,
    'a/node_modules/x/bad.py': BAD,
    'a/.venv/bad.py': BAD,
  });
  const r = await check(path.join(dir, 'a'));
  assert.equal(r.code, 1);
  const lines = r.out.split('\n');
  assert.deepEqual(
    lines.map((l) => l.replace(dir + path.sep, '').replace(/: .*/, '')).sort(),
    ['3 files checked', path.join('a', 'b', 'quant.ts:3:1'), path.join('a', 'nb.ipynb:cell2:4:1'), path.join('a', 'train.py:4:1')].sort(),
  );
  assert.match(r.out, /quant\.ts:3:1: error LINGER004: linger\.init is applied a second time to the same model \(first at line 2\)/);
  assert.match(r.out, /nb\.ipynb:cell2:4:1: error LINGER001: .*\(cell 2, line 3\) and linger\.init \(cell 2, line 5\)/);
});

test('globs: *, **, ?, {a,b}, relative and absolute', async () => {
  const dir = tmpTree({ 'x/one.py': BAD, 'x/two.py': GOOD, 'x/deep/three.py': WARN, 'x/deep/four.ts': GOOD, 'x/.hidden.py': BAD });
  assert.deepEqual(
    expandGlob(path.join(dir, 'x', '*.py')).map((f) => path.basename(f)),
    ['one.py', 'two.py'],
  );
  assert.deepEqual(
    expandGlob(path.join(dir, 'x', '**', '*.py'))
      .map((f) => path.relative(dir, f))
      .sort(),
    [path.join('x', 'deep', 'three.py'), path.join('x', 'one.py'), path.join('x', 'two.py')],
  );
  assert.deepEqual(
    expandGlob(path.join(dir, 'x', '**', 't?o.{py,ts}')).map((f) => path.basename(f)),
    ['two.py'],
  );
  assert.deepEqual(
    expandGlob(path.join(dir, 'x', 'deep', '*.[pt][ys]')).map((f) => path.basename(f)),
    ['four.ts', 'three.py'],
  );
  const cwd = process.cwd();
  process.chdir(dir);
  try {
    const r = await check('x/**/*.py');
    assert.equal(r.code, 1);
    assert.match(r.out, /^x\/one\.py:4:1: error LINGER001/m);
    assert.match(r.out, /^x\/deep\/three\.py:3:1: warning LINGER002/m);
    assert.match(r.out, /3 files checked: 1 error, 1 warning$/);
  } finally {
    process.chdir(cwd);
  }
});

test('usage errors exit 2 with a message', async () => {
  const none = await check();
  assert.equal(none.code, 2);
  assert.match(none.out, /^linger check: no files given/);
  assert.match(none.out, /usage: linger check/);
  const fmt = await check('--format', 'xml', 'a.py');
  assert.equal(fmt.code, 2);
  assert.match(fmt.out, /--format must be text or json, got 'xml'/);
  const opt = await check('--frobnicate', 'a.py');
  assert.equal(opt.code, 2);
  assert.match(opt.out, /Unknown option '--frobnicate'/);
  const missing = await check('/nonexistent/file.py');
  assert.equal(missing.code, 2);
  assert.equal(missing.out, 'linger check: /nonexistent/file.py: no such file or directory');
  const noMatch = await check('/nonexistent/**/*.py');
  assert.equal(noMatch.code, 2);
  assert.equal(noMatch.out, "linger check: no files match '/nonexistent/**/*.py'");
  const dir = tmpTree({ 'notes.txt': BAD });
  const wrongType = await check(path.join(dir, 'notes.txt'));
  assert.equal(wrongType.code, 2);
  assert.match(wrongType.out, /notes\.txt: not a Python, TypeScript, JavaScript or notebook file/);
  const help = await check('--help');
  assert.equal(help.code, 0);
  assert.match(help.out, /LINGER005 warning/);
});

test('the whole fixture corpus through the CLI: errors exit 1, JSON lists every annotated diagnostic', async () => {
  const r = await check('--format', 'json', path.join(FIXTURES, '*.{py,ts,mts,tsx,js,ipynb}'));
  assert.equal(r.code, 1);
  const results = JSON.parse(r.out) as CheckResult[];
  const annotated = fs
    .readdirSync(FIXTURES)
    .filter((n) => /\.(py|ts|mts|tsx|js|ipynb)$/.test(n))
    .reduce((n, f) => n + (fs.readFileSync(path.join(FIXTURES, f), 'utf8').match(/expect: LINGER\d{3}/g) ?? []).length, 0);
  assert.equal(results.length, annotated);
});
