// Issue 21, the analyzer rows: a file the analyzer gives up on, or that is not a script or a
// notebook, is a LINGER000 "could not analyse: <reason>" and `linger check` counts it and exits 2
// (never "0 errors"); the rule pass is bounded by the deadline; special files never block check.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LoadOrderAnalyzer } from '../../../src/engine/analysis';
import { runCheck } from '../../../src/engine/cli/check';

let analyzer: LoadOrderAnalyzer;
before(async () => {
  analyzer = await LoadOrderAnalyzer.create();
});

function tmpTree(files: Record<string, string | Buffer>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'linger-check21-'));
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
  return dir;
}

async function check(...args: string[]): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const code = await runCheck(args, (s) => lines.push(s));
  return { code, out: lines.join('\n') };
}

const DOUBLE_INIT = 'import linger\nlinger.init(model)\nlinger.init(model)\n';

test('files the analyzer gives up on: deep nesting, a deadline, CR-only line endings', async () => {
  const deep = 'import linger\nx = ' + '('.repeat(5000) + 'linger.init(model)' + ')'.repeat(5000) + '\nlinger.init(model)\n';
  assert.match(
    analyzer
      .analyze(deep, 'python')
      .map((d) => `${d.code}: ${d.message}`)
      .join('\n'),
    /^LINGER000: could not analyse: the code is nested too deeply/,
  );
  const oneLine = 'import linger\nlinger.init(m); linger.init(m); x = [' + '1,'.repeat(200_000) + ']\n';
  assert.deepEqual(
    analyzer.analyze(oneLine, 'python', { timeoutMs: 1, prefilter: false }).map((d) => d.code),
    ['LINGER000'],
  );
  // CR-only line endings: read as line breaks (as editors do), so the LINGER001 is found where it is
  const cr =
    'import linger\rmodel = MyNet()\rmodel = linger.trace_layers(model, model, x)\rmodel.load_state_dict(sd)\rmodel = linger.init(model)\r';
  assert.deepEqual(
    analyzer.analyze(cr, 'python').map((d) => `${d.range.start.line}:${d.code}`),
    ['3:LINGER001'],
  );
  const dir = tmpTree({ 'deep.py': deep, 'cr.py': cr });
  const r = await check(path.join(dir, 'deep.py'), path.join(dir, 'cr.py'));
  assert.equal(r.code, 2);
  assert.match(r.out, /deep\.py:1:1: warning LINGER000: could not analyse: the code is nested too deeply/);
  assert.match(r.out, /cr\.py:4:1: error LINGER001/);
  assert.match(r.out, /2 files checked: 1 error, 0 warnings, 1 not analysed$/);
});

test('files that are not a script or a notebook: a JSON list, a truncated notebook, random bytes, an ELF binary, UTF-16', async () => {
  const random = Buffer.alloc(4096);
  for (let i = 0, x = 12345; i < random.length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    random[i] = x >>> 24;
  }
  const dir = tmpTree({
    'list.ipynb': '[1, 2, 3]',
    'cut.ipynb': JSON.stringify({
      cells: [{ cell_type: 'code', source: DOUBLE_INIT }],
      metadata: {},
      nbformat: 4,
      nbformat_minor: 5,
    }).slice(0, 40),
    'random.py': random,
    'elf.py': fs.readFileSync(process.execPath).subarray(0, 20_000),
    'utf16.py': Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(DOUBLE_INIT, 'utf16le')]),
    'utf16nobom.ts': Buffer.from(DOUBLE_INIT, 'utf16le'),
    'latin1.py': Buffer.concat([Buffer.from('# -*- coding: latin-1 -*-\n# caf'), Buffer.from([0xe9]), Buffer.from('\n' + DOUBLE_INIT)]),
  });
  const r = await check('--format', 'json', dir);
  assert.equal(r.code, 2);
  const byFile = new Map<string, string[]>();
  for (const d of JSON.parse(r.out) as Array<{ file: string; code: string; message: string }>) {
    const k = path.basename(d.file);
    byFile.set(k, [...(byFile.get(k) ?? []), `${d.code}: ${d.message}`]);
  }
  assert.match(
    byFile.get('list.ipynb')!.join(),
    /LINGER000: could not analyse: this is not a Jupyter notebook: the top level is a JSON list/,
  );
  assert.match(byFile.get('cut.ipynb')!.join(), /LINGER000: could not analyse: the notebook is not valid JSON/);
  assert.match(byFile.get('random.py')!.join(), /LINGER000: could not analyse: (it is not UTF-8 text|this is not text)/);
  assert.match(byFile.get('elf.py')!.join(), /LINGER000: could not analyse: (it is not UTF-8 text|this is not text)/);
  assert.match(byFile.get('utf16.py')!.join(), /LINGER000: could not analyse: it is UTF-16 text/);
  assert.match(byFile.get('utf16nobom.ts')!.join(), /LINGER000: could not analyse: this is not text: it holds a NUL character/);
  // a declared coding is honoured: analysed, and its error found
  assert.deepEqual(
    byFile.get('latin1.py')!.map((m) => m.slice(0, 9)),
    ['LINGER004'],
  );
  const text = await check(dir);
  assert.match(text.out, /7 files checked: 1 error, 0 warnings, 6 not analysed$/);
});

test('a notebook cell whose source is not text is named, the others analysed', async () => {
  const nb = {
    cells: [
      { cell_type: 'code', source: 42 },
      { cell_type: 'code', source: DOUBLE_INIT },
    ],
    metadata: {},
    nbformat: 4,
    nbformat_minor: 5,
  };
  const dir = tmpTree({ 'nb.ipynb': JSON.stringify(nb) });
  const r = await check(path.join(dir, 'nb.ipynb'));
  assert.equal(r.code, 2);
  assert.match(
    r.out,
    /nb\.ipynb:cell1:1:1: warning LINGER000: could not analyse: cell 1 has a source that is not a string or a list of strings \(a number\)/,
  );
  assert.match(r.out, /nb\.ipynb:cell2:3:1: error LINGER004/);
});

test('20,000 / 40,000 load+init pairs: the rule pass ends at the deadline with a LINGER000', () => {
  for (const n of [20_000, 40_000]) {
    const src = 'import linger\n' + 'model.load_state_dict(sd)\nmodel = linger.init(model)\n'.repeat(n);
    const t0 = performance.now();
    const d = analyzer.analyze(src, 'python', { timeoutMs: 1500 });
    const ms = performance.now() - t0;
    assert.ok(ms < 6000, `${n} pairs: ${ms.toFixed(0)} ms`);
    assert.ok(
      d.some((x) => x.code === 'LINGER000' && /took longer than 1500 ms/.test(x.message)) || d.length >= 2 * n - 1,
      `${n} pairs: complete or reported`,
    );
  }
});

test('a symlink loop, a FIFO and a directory named *.py: their own message, nothing blocks', async () => {
  const dir = tmpTree({});
  const loop = path.join(dir, 'loop.py');
  fs.symlinkSync(path.join(dir, 'loop2.py'), loop);
  fs.symlinkSync(loop, path.join(dir, 'loop2.py'));
  const fifo = path.join(dir, 'fifo.py');
  execFileSync('mkfifo', [fifo]);
  const l = await check(loop);
  assert.equal(l.code, 2);
  assert.equal(l.out, `linger check: ${loop}: a symbolic link loop (too many levels of links)`);
  const f = await check(fifo);
  assert.equal(f.code, 2);
  assert.match(f.out, /^linger check: cannot read .*fifo\.py: is a FIFO \(named pipe\), not a source file$/m);
  // inside a folder walk too
  fs.writeFileSync(path.join(dir, 'ok.py'), DOUBLE_INIT);
  const w = await check(dir);
  assert.equal(w.code, 2);
  assert.match(w.out, /cannot read .*fifo\.py: is a FIFO/);
  assert.match(w.out, /ok\.py:3:1: error LINGER004/);
});

test('a syntax error that hides linger calls is reported, not "0 errors"; one elsewhere is not', async () => {
  // an unclosed bracket swallows the rest of the file, double init included
  const unclosed = 'import linger\nx = foo(' + '('.repeat(300) + '\nlinger.init(model)\nlinger.init(model)\n';
  const found = analyzer.analyze(unclosed, 'python');
  assert.deepEqual(
    found.map((d) => d.code),
    ['LINGER000'],
  );
  assert.match(found[0].message, /^could not analyse: a syntax error at line \d+ hides the code after it/);
  const ts = "import { linger } from 'linger-studio';\nconst x = f(((\nlinger.init(model);\nlinger.init(model);\n";
  const tsFound = analyzer.analyze(ts, 'typescript').map((d) => d.code);
  assert.ok(tsFound.includes('LINGER000') || tsFound.includes('LINGER003'), `TypeScript: reported either way (${tsFound.join(', ')})`);
  // a syntax error away from the linger calls leaves their diagnostics as they are
  const elsewhere = 'import linger\nlinger.init(model)\nlinger.init(model)\ndef f(:\n    pass\n';
  assert.deepEqual(
    analyzer.analyze(elsewhere, 'python').map((d) => d.code),
    analyzer.analyze(DOUBLE_INIT, 'python').map((d) => d.code),
  );
  assert.ok(analyzer.analyze(DOUBLE_INIT, 'python').length > 0);
  const dir = tmpTree({ 'unclosed.py': unclosed });
  const r = await check(path.join(dir, 'unclosed.py'));
  assert.equal(r.code, 2);
  assert.match(r.out, /1 file checked: 0 errors, 0 warnings, 1 not analysed$/);
});
