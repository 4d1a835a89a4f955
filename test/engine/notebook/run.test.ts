// `linger run` and `linger new-notebook` through the CLI, and the nbformat reader/writer they use:
// the experiment template runs end to end and writes a valid nbformat 4.5 notebook beside the
// input (which is never touched), a failing cell stops the run with its error in the output,
// malformed files are refused without a change, and --timeout interrupts a cell.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { NbOutput } from '../../../src/engine/notebook/messages';
import { applyOutput, Notebook, NotebookFormatError, parseNotebook, serializeNotebook } from '../../../src/engine/notebook/nbformat';

const root = path.join(__dirname, '..', '..', '..');
// by URL, so that the CLI can run in the notebook's folder (a bare `--import tsx` resolves from the cwd)
const TSX = pathToFileURL(require.resolve('tsx')).href;

function linger(args: string[], cwd: string) {
  return spawnSync(process.execPath, ['--import', TSX, path.join(root, 'src', 'engine', 'cli.ts'), ...args], {
    encoding: 'utf8',
    cwd,
    timeout: 170_000,
  });
}

const sha256 = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');
const tempDir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'linger-run-'));

/** Validates a notebook file against nbformat's own schema (Jupyter's python3-nbformat). */
function assertValidNbformat(file: string): void {
  const r = spawnSync(
    '/usr/bin/python3',
    ['-c', 'import json,sys,nbformat; nbformat.validate(json.load(open(sys.argv[1]))); print("valid")', file],
    { encoding: 'utf8' },
  );
  if (r.error || /No module named .?nbformat/.test(r.stderr ?? '')) {
    assert.fail(
      `cannot validate notebooks: /usr/bin/python3 with the nbformat module is needed (install python3-nbformat: apt-get install python3-nbformat): ${r.error?.message ?? r.stderr}`,
    );
  }
  assert.equal(r.status, 0, `${file} is not valid nbformat:\n${r.stderr}`);
  assert.equal(r.stdout.trim(), 'valid');
}

// the shape written files have (multi-line strings as lists of lines)
interface FileOutput {
  output_type: string;
  name?: string;
  text?: string[];
  data?: Record<string, unknown>;
  ename?: string;
  evalue?: string;
  traceback?: string[];
  execution_count?: number | null;
}
interface FileCell {
  id: string;
  cell_type: string;
  source: string[];
  metadata: Record<string, unknown>;
  outputs?: FileOutput[];
  execution_count?: number | null;
}
interface FileNotebook {
  nbformat: number;
  nbformat_minor: number;
  metadata: Record<string, unknown>;
  cells: FileCell[];
}
const readNb = (file: string) => JSON.parse(fs.readFileSync(file, 'utf8')) as FileNotebook;
const str = (v: unknown) => (Array.isArray(v) ? v.join('') : String(v ?? ''));
const src = (c: FileCell) => c.source.join('');

test('linger new-notebook --quick, then linger run: every stage, a valid nbformat 4.5 notebook beside the untouched input', () => {
  const dir = tempDir();
  try {
    const made = linger(['new-notebook', 'exp.ipynb', '--quick'], dir);
    assert.equal(made.status, 0, made.stderr);
    assert.match(made.stdout, /^wrote exp\.ipynb: run it with `linger run exp\.ipynb`/);
    const input = path.join(dir, 'exp.ipynb');
    assertValidNbformat(input);
    const before = sha256(input);
    assert.equal(linger(['new-notebook', 'exp.ipynb'], dir).status, 1, 'an existing notebook is not replaced without --force');
    assert.equal(sha256(input), before);

    const t0 = performance.now();
    const r = linger(['run', 'exp.ipynb'], dir);
    console.log(`linger run of the quick experiment notebook: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    assert.equal(r.status, 0, r.stderr);
    const ran = /^ran (\d+) code cells in [\d.]+ s; wrote exp\.out\.ipynb$/m.exec(r.stdout);
    assert.ok(ran, r.stdout);
    assert.match(r.stderr, /^cell \d+\/\d+…$/m);
    assert.equal(sha256(input), before, 'the input notebook is not touched');

    const out = path.join(dir, 'exp.out.ipynb');
    assertValidNbformat(out);
    const nb = readNb(out);
    assert.equal(nb.nbformat, 4);
    assert.equal(nb.nbformat_minor, 5);
    assert.deepEqual(nb.metadata.kernelspec, { name: 'linger', display_name: 'Linger (TypeScript)', language: 'typescript' });
    const code = nb.cells.filter((c) => c.cell_type === 'code');
    assert.equal(code.length, Number(ran[1]));
    assert.ok(code.length >= 8, `${code.length} code cells`);
    assert.deepEqual(
      code.map((c) => c.execution_count),
      code.map((_, i) => i + 1),
    );
    for (const c of nb.cells.filter((x) => x.cell_type === 'markdown')) assert.ok(!('outputs' in c) && !('execution_count' in c));
    assert.ok(!code.some((c) => c.outputs!.some((o) => o.output_type === 'error')), 'no cell failed');
    // the ids and sources are the input's
    assert.deepEqual(
      nb.cells.map((c) => [c.id, src(c)]),
      readNb(input).cells.map((c) => [c.id, src(c)]),
    );

    const outputs = code.flatMap((c) => c.outputs!);
    const all = JSON.stringify(outputs);
    assert.ok(!all.includes('application/vnd.linger.chart+json'), 'no chart spec is written');
    assert.ok(!all.includes('"transient"') && !outputs.some((o) => o.output_type === 'update_display_data'), 'display updates were folded');

    // the module table before and after traceLayers
    const traced = code.find((c) => src(c).includes('linger.traceLayers'))!;
    const [shown, result] = traced.outputs!;
    assert.equal(shown.output_type, 'display_data');
    assert.match(str(shown.data!['text/html']), /^<table>.*<code>conv1<\/code>.*<code>Conv2d\(1, 16/);
    assert.ok(!str(shown.data!['text/html']).includes('NormalizeConvBN2d'));
    assert.equal(result.output_type, 'execute_result');
    assert.equal(result.execution_count, traced.execution_count);
    assert.match(str(result.data!['text/html']), /^<table>.*<code>conv1<\/code>.*<code>NormalizeConvBN2d/);
    assert.match(str(result.data!['text/plain']), /\(conv1\): NormalizeConvBN2d\(/);

    // live fit output, folded to its summary, with the loss chart as SVG
    const texts = outputs.map((o) => str(o.data?.['text/plain']));
    assert.ok(
      texts.some((t) => /^fit: 1 epoch, \d+ steps in [\d.]+ s on 2 threads · mean loss per epoch [\d.]+$/.test(t)),
      texts.join('\n'),
    );
    assert.ok(
      outputs.some((o) => /^<svg/.test(str(o.data?.['image/svg+xml'])) && str(o.data?.['text/plain']) === '<chart: training loss>'),
    );
    for (const stage of ['float', 'traced', 'fixed']) {
      assert.ok(
        texts.some((t) => new RegExp(`^accuracy \\d+\\.\\d\\d% · loss [\\d.]+ · [\\d,]+ samples \\(${stage} stage\\)$`).test(t)),
        `${stage}: ${texts.join('\n')}`,
      );
    }
    // the quant report
    const report = code.find((c) => src(c).includes('linger.quantReport'))!.outputs!.find((o) => o.output_type === 'execute_result')!;
    assert.match(str(report.data!['text/html']), /^<table><thead><tr><th[^>]*>path<\/th>/);
    assert.match(str(report.data!['text/plain']), /^layer +type +bits x\/w\/o/);
    // onnxruntime agrees bit for bit
    assert.ok(
      outputs.some((o) => o.output_type === 'stream' && /^qdq: 100% of \d+ outputs bit-exact in onnxruntime$/m.test(str(o.text))),
      all.slice(-2000),
    );
    // the accuracy chart, the last cell's result
    const last = code[code.length - 1].outputs!.find((o) => o.output_type === 'execute_result')!;
    assert.match(str(last.data!['image/svg+xml']), /^<svg[\s\S]*<\/svg>\n?$/);
    assert.equal(str(last.data!['text/plain']), '<chart: test accuracy by stage>');
    // the checkpoints, beside the notebook
    for (const stage of ['float', 'traced', 'fixed']) {
      const file = path.join(dir, 'checkpoints', 'experiment', `${stage}.safetensors`);
      assert.ok(fs.existsSync(file), file);
      assert.ok(texts.includes(`saved the ${stage}-stage checkpoint ${file}`), `saved ${stage}`);
    }
    assert.ok(texts.some((t) => t.startsWith('saved the fixed-stage checkpoint')));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

/** A hand-written nbformat 4.2 notebook: sources as lists, no cell ids, a key of another tool. */
function badNotebook(): string {
  return JSON.stringify(
    {
      nbformat: 4,
      nbformat_minor: 2,
      metadata: { custom_tool: { a: 1 }, kernelspec: { name: 'linger', display_name: 'Linger (TypeScript)', language: 'typescript' } },
      cells: [
        { cell_type: 'code', metadata: {}, execution_count: null, outputs: [], source: ['const first = "one";\n', 'console.log(first)'] },
        {
          cell_type: 'code',
          metadata: { tags: ['fails'] },
          execution_count: 7,
          outputs: [{ output_type: 'stream', name: 'stdout', text: ['stale\n'] }],
          source: ['const a = 1;\n', "throw new Error('broken on purpose');"],
        },
        { cell_type: 'markdown', metadata: {}, source: ['# after the error'] },
        {
          cell_type: 'code',
          metadata: {},
          execution_count: 8,
          outputs: [{ output_type: 'stream', name: 'stdout', text: ['stale too\n'] }],
          source: ["console.log('third ran', a, first)"],
        },
      ],
    },
    null,
    2,
  );
}

test('a failing cell stops the run (exit 1) and is written with its error; --allow-errors goes on; --inplace rewrites the input', () => {
  const dir = tempDir();
  try {
    const bad = path.join(dir, 'bad.ipynb');
    fs.writeFileSync(bad, badNotebook());
    const before = sha256(bad);

    const r = linger(['run', 'bad.ipynb', '-o', 'out.ipynb'], dir);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /^cell 2 \(execution 2\) failed:$/m);
    assert.match(r.stderr, /^ {2}Error: broken on purpose$/m);
    assert.match(r.stderr, /^ {4}at Cell \[2\], line 2, column \d+$/m);
    assert.match(r.stdout, /wrote out\.ipynb$/m);
    assert.equal(sha256(bad), before, 'the input is not touched');
    assert.ok(!fs.existsSync(path.join(dir, 'bad.out.ipynb')));

    const outFile = path.join(dir, 'out.ipynb');
    assertValidNbformat(outFile);
    const nb = readNb(outFile);
    assert.equal(nb.nbformat_minor, 5);
    assert.deepEqual(nb.metadata.custom_tool, { a: 1 }, 'metadata of other tools is kept');
    const ids = nb.cells.map((c) => c.id);
    assert.ok(
      ids.every((id) => /^[a-zA-Z0-9-_]{1,64}$/.test(id)),
      ids.join(),
    );
    assert.equal(new Set(ids).size, 4, 'cell ids were generated, unique');
    assert.deepEqual(
      nb.cells.map((c) => c.source),
      [
        ['const first = "one";\n', 'console.log(first)'],
        ['const a = 1;\n', "throw new Error('broken on purpose');"],
        ['# after the error'],
        ["console.log('third ran', a, first)"],
      ],
    );
    const [c1, c2, , c4] = nb.cells;
    assert.deepEqual(c1.outputs, [{ output_type: 'stream', name: 'stdout', text: ['one\n'] }]);
    assert.equal(c1.execution_count, 1);
    assert.equal(c2.execution_count, 2);
    assert.deepEqual(c2.metadata, { tags: ['fails'] });
    assert.equal(c2.outputs!.length, 1);
    const err = c2.outputs![0];
    assert.equal(err.output_type, 'error');
    assert.equal(err.ename, 'Error');
    assert.equal(err.evalue, 'broken on purpose');
    assert.match(
      err.traceback!.join('\n'),
      /^Error: broken on purpose\n {2}at Cell \[2\], line 2, column \d+\n {4}throw new Error\('broken on purpose'\);/,
    );
    // the cell after the error did not run: its stale outputs are cleared
    assert.deepEqual(c4.outputs, []);
    assert.equal(c4.execution_count, null);

    const on = linger(['run', 'bad.ipynb', '-o', 'all.ipynb', '--allow-errors'], dir);
    assert.equal(on.status, 0, on.stderr);
    assert.match(on.stderr, /cell 2 \(execution 2\) failed:/, 'the error is still reported');
    assert.match(on.stdout, /^ran 3 code cells in [\d.]+ s; wrote all\.ipynb$/m);
    const all = readNb(path.join(dir, 'all.ipynb'));
    assert.equal(all.cells[1].outputs![0].ename, 'Error');
    assert.deepEqual(all.cells[3].outputs, [{ output_type: 'stream', name: 'stdout', text: ['third ran 1 one\n'] }]);
    assert.equal(all.cells[3].execution_count, 3);
    assertValidNbformat(path.join(dir, 'all.ipynb'));

    assert.equal(linger(['run', 'bad.ipynb', '--inplace', '-o', 'x.ipynb'], dir).status, 2, '--inplace and -o are exclusive');
    const inplace = linger(['run', 'bad.ipynb', '--inplace', '--allow-errors'], dir);
    assert.equal(inplace.status, 0, inplace.stderr);
    assert.match(inplace.stdout, /wrote bad\.ipynb$/m);
    assert.notEqual(sha256(bad), before);
    assertValidNbformat(bad);
    const rewritten = readNb(bad);
    assert.equal(rewritten.nbformat_minor, 5);
    assert.deepEqual(rewritten.cells[3].outputs, all.cells[3].outputs);
    assert.deepEqual(rewritten.metadata.custom_tool, { a: 1 });
    assert.ok(rewritten.cells.every((c) => typeof c.id === 'string'));
    assert.deepEqual(fs.readdirSync(dir).sort(), ['all.ipynb', 'bad.ipynb', 'out.ipynb']);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('malformed notebooks are refused with the reason, and left byte for byte as they were', () => {
  const dir = tempDir();
  try {
    const cases: [string, string, RegExp][] = [
      ['truncated.ipynb', '{"cells": [', /^linger run: truncated\.ipynb is not valid JSON.* \(the file was not changed\)$/m],
      [
        'array.ipynb',
        '[{"cell_type": "code"}]',
        /^linger run: array\.ipynb is not a Jupyter notebook: the top level is not a JSON object \(the file was not changed\)$/m,
      ],
      [
        'v3.ipynb',
        JSON.stringify({ nbformat: 3, nbformat_minor: 0, metadata: {}, worksheets: [{ cells: [] }] }),
        /^linger run: v3\.ipynb is not a Jupyter notebook Linger can read: it is nbformat 3 \(nbformat 4 is supported;/m,
      ],
      [
        'nocells.ipynb',
        JSON.stringify({ nbformat: 4, nbformat_minor: 5, metadata: {} }),
        /is not a Jupyter notebook: it has no list of cells/,
      ],
    ];
    for (const [name, content] of cases) fs.writeFileSync(path.join(dir, name), content);
    const sums = cases.map(([name]) => sha256(path.join(dir, name)));
    cases.forEach(([name, , message], i) => {
      const r = linger(['run', name], dir);
      assert.equal(r.status, 1, `${name}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.equal(r.stdout, '');
      assert.equal(sha256(path.join(dir, name)), sums[i], `${name} is unchanged`);
    });
    assert.deepEqual(fs.readdirSync(dir).sort(), cases.map(([n]) => n).sort(), 'no .out.ipynb was written');
    const missing = linger(['run', 'nowhere.ipynb'], dir);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /linger run: nowhere\.ipynb does not exist/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('--timeout interrupts a cell that trains forever', () => {
  const dir = tempDir();
  try {
    const nb: Notebook = {
      nbformat: 4,
      nbformat_minor: 5,
      metadata: {},
      cells: [
        {
          id: 'loop',
          cell_type: 'code',
          metadata: {},
          outputs: [],
          execution_count: null,
          source: [
            'const m = new nn.Linear(4, 2);',
            'const opt = new optim.SGD(m.parameters(), { lr: 0.01 });',
            'let steps = 0;',
            'while (true) { opt.step(() => m(randn([8, 4])).pow(2).mean()); steps++; }',
          ].join('\n'),
        },
        { id: 'after', cell_type: 'code', metadata: {}, outputs: [], execution_count: null, source: 'steps' },
      ],
    };
    fs.writeFileSync(path.join(dir, 'loop.ipynb'), serializeNotebook(nb));
    assert.equal(linger(['run', 'loop.ipynb', '--timeout', 'soon'], dir).status, 2);
    const r = linger(['run', 'loop.ipynb', '--timeout', '2'], dir);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /^cell 1 \(execution 1\) failed:\n {2}InterruptedError: interrupted at (an optimizer step|a call of Linear)$/m);
    const out = readNb(path.join(dir, 'loop.out.ipynb'));
    assert.equal(out.cells[0].outputs![0].ename, 'InterruptedError');
    assert.match(out.cells[0].outputs![0].traceback!.join('\n'), /at Cell \[1\], line 4, column \d+/);
    assert.deepEqual(out.cells[1].outputs, []);
    assertValidNbformat(path.join(dir, 'loop.out.ipynb'));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("nbformat: lenient reading, Jupyter's layout in writing", () => {
  const dropped: string[] = [];
  const text = JSON.stringify({
    nbformat: 4,
    nbformat_minor: 4,
    metadata: { custom_tool: { a: 1 } },
    extra_top: true,
    cells: [
      {
        cell_type: 'markdown',
        id: 'same',
        metadata: {},
        source: ['# Title\n', '\n', 'text'],
        outputs: [{ output_type: 'stream', name: 'stdout', text: 'x' }],
        attachments: { 'a.png': { 'image/png': 'AAAA' } },
      },
      {
        cell_type: 'code',
        id: 'same',
        metadata: { collapsed: true },
        source: 'const x = 1;\nx\n',
        execution_count: 3,
        unknown_key: 1,
        outputs: [
          { output_type: 'stream', name: 'stderr', text: ['a\n', 'b\n'] },
          {
            output_type: 'execute_result',
            execution_count: 3,
            metadata: {},
            data: { 'text/plain': ['1'], 'image/svg+xml': ['<svg>\n', '</svg>'], 'application/json': { k: ['v'] } },
          },
          { output_type: 'error', ename: 'E', evalue: 'v', traceback: ['E: v'] },
        ],
      },
      { cell_type: 'raw', metadata: {}, source: [] },
      { cell_type: 'code', id: 'bad id!', metadata: {}, source: ['y'] },
    ],
  });
  const nb = parseNotebook(text, 'nb.ipynb', dropped);
  assert.deepEqual(dropped, ['extra_top', 'cells[1].unknown_key']);
  assert.equal(nb.nbformat_minor, 4);
  const [md, code, raw, noId] = nb.cells;
  assert.equal(md.source, '# Title\n\ntext');
  assert.equal(md.outputs, undefined, 'a markdown cell has no outputs');
  assert.deepEqual(md.attachments, { 'a.png': { 'image/png': 'AAAA' } });
  assert.equal(md.id, 'same');
  assert.notEqual(code.id, 'same', 'a duplicate id is replaced');
  assert.match(code.id, /^[0-9a-f]{8}$/);
  assert.match(noId.id, /^[0-9a-f]{8}$/, 'an invalid id is replaced');
  assert.equal(new Set(nb.cells.map((c) => c.id)).size, 4);
  assert.equal(code.source, 'const x = 1;\nx\n');
  assert.equal(code.execution_count, 3);
  assert.deepEqual(code.metadata, { collapsed: true });
  assert.deepEqual(code.outputs, [
    { output_type: 'stream', name: 'stderr', text: 'a\nb\n' },
    {
      output_type: 'execute_result',
      execution_count: 3,
      metadata: {},
      data: { 'text/plain': '1', 'image/svg+xml': '<svg>\n</svg>', 'application/json': { k: ['v'] } },
    },
    { output_type: 'error', ename: 'E', evalue: 'v', traceback: ['E: v'] },
  ]);
  assert.equal(raw.source, '');
  assert.equal(noId.execution_count, null);
  assert.deepEqual(noId.outputs, []);

  const written = serializeNotebook(nb);
  assert.match(written, /^\{\n "cells": \[\n {2}\{\n {3}"cell_type": "markdown",\n/, 'one-space indent, as Jupyter writes');
  assert.ok(written.endsWith('}\n'));
  const file = JSON.parse(written) as FileNotebook;
  assert.equal(file.nbformat, 4);
  assert.equal(file.nbformat_minor, 5);
  assert.deepEqual(file.metadata, { custom_tool: { a: 1 } });
  assert.ok(!('extra_top' in file));
  assert.deepEqual(Object.keys(file.cells[0]), ['cell_type', 'id', 'metadata', 'attachments', 'source']);
  assert.deepEqual(Object.keys(file.cells[1]), ['cell_type', 'execution_count', 'id', 'metadata', 'outputs', 'source']);
  assert.deepEqual(file.cells[0].source, ['# Title\n', '\n', 'text']);
  assert.deepEqual(file.cells[1].source, ['const x = 1;\n', 'x\n']);
  assert.deepEqual(file.cells[2].source, []);
  assert.deepEqual(file.cells[1].outputs, [
    { output_type: 'stream', name: 'stderr', text: ['a\n', 'b\n'] },
    {
      output_type: 'execute_result',
      data: { 'text/plain': ['1'], 'image/svg+xml': ['<svg>\n', '</svg>'], 'application/json': { k: ['v'] } },
      metadata: {},
      execution_count: 3,
    },
    { output_type: 'error', ename: 'E', evalue: 'v', traceback: ['E: v'] },
  ]);
  // round trip: reading what was written gives the same notebook (at minor 5)
  assert.deepEqual(parseNotebook(written), { ...nb, nbformat_minor: 5 });
  assert.equal(serializeNotebook(parseNotebook(written)), written);
  const dir = tempDir();
  try {
    fs.writeFileSync(path.join(dir, 'w.ipynb'), written);
    assertValidNbformat(path.join(dir, 'w.ipynb'));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }

  assert.throws(
    () => parseNotebook('{"cells": [', 'x.ipynb'),
    (e: Error) => e instanceof NotebookFormatError && /^x\.ipynb is not valid JSON/.test(e.message),
  );
  assert.throws(
    () => parseNotebook('{"nbformat": 4, "cells": [{"cell_type": "widget"}]}', 'x.ipynb'),
    /x\.ipynb: cell 1 has an unknown cell_type "widget"/,
  );
  assert.throws(() => parseNotebook('{"cells": []}', 'x.ipynb'), /it has no nbformat field/);
  assert.equal(parseNotebook('\uFEFF{"nbformat": 4, "cells": []}').cells.length, 0, 'a byte-order mark is allowed');
});

test('applyOutput folds outputs as a front end shows them', () => {
  const outputs: NbOutput[] = [];
  const ids = new Map<string, number>();
  const apply = (o: NbOutput) => applyOutput(outputs, o, ids);
  apply({ output_type: 'stream', name: 'stdout', text: 'a\n' });
  apply({ output_type: 'stream', name: 'stdout', text: 'b\n' });
  apply({ output_type: 'stream', name: 'stderr', text: 'e\n' });
  apply({ output_type: 'display_data', data: { 'text/plain': 'step 1' }, metadata: {}, transient: { display_id: 'p' } });
  apply({ output_type: 'stream', name: 'stderr', text: 'f\n' });
  apply({ output_type: 'update_display_data', data: { 'text/plain': 'step 2' }, metadata: {}, transient: { display_id: 'p' } });
  apply({ output_type: 'update_display_data', data: { 'text/plain': 'nobody' }, metadata: {}, transient: { display_id: 'unknown' } });
  apply({ output_type: 'update_display_data', data: { 'text/plain': 'done' }, metadata: {}, transient: { display_id: 'p' } });
  assert.deepEqual(outputs, [
    { output_type: 'stream', name: 'stdout', text: 'a\nb\n' },
    { output_type: 'stream', name: 'stderr', text: 'e\n' },
    { output_type: 'display_data', data: { 'text/plain': 'done' }, metadata: {} },
    { output_type: 'stream', name: 'stderr', text: 'f\n' },
  ]);
});
