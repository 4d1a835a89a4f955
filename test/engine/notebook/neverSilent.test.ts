// Issue 21, the notebook rows: `linger run` reads a notebook as Jupyter's nbformat does and no
// further: a source that is not text is an error naming the cell (the file unchanged), invalid
// UTF-8 is an error, a notebook of another kernel language is refused unless --kernel linger,
// special files never block, and a cell that runs out of memory is reported as such.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { decodeNotebook, foreignKernel, NotebookFormatError, parseNotebook } from '../../../src/engine/notebook/nbformat';
import { runNotebook } from '../../../src/engine/notebook/run';
import { KernelSession, stuckCellMessage } from '../../../src/engine/notebook/session';
import { runRun } from '../../../src/engine/cli/run';

const tempDir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'linger-nb21-'));
const sha256 = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');
const nbJson = (cells: unknown[], metadata: Record<string, unknown> = {}) =>
  JSON.stringify({ cells, metadata, nbformat: 4, nbformat_minor: 5 });

async function cli(...args: string[]): Promise<{ code: number; err: string; out: string }> {
  const err: string[] = [];
  const out: string[] = [];
  const code = await runRun(
    args,
    (s) => out.push(s),
    (s) => err.push(s),
  );
  return { code, err: err.join('\n'), out: out.join('\n') };
}

test('a code cell whose source is a number, null or a list of non-strings is an error naming the cell; the file is unchanged', async () => {
  const cases: [unknown, RegExp][] = [
    [42, /cell 2 \(code\) has a source that is not a string or a list of strings \(a number\)/],
    [null, /cell 2 \(code\) has a source that is not a string or a list of strings \(null\)/],
    [[1, 2, 3], /cell 2 \(code\) has a source that is not a string or a list of strings \(a list holding values that are not strings\)/],
    [{ a: 1 }, /\(an object\)/],
  ];
  const dir = tempDir();
  try {
    for (const [source, re] of cases) {
      assert.throws(
        () =>
          parseNotebook(
            nbJson([
              { cell_type: 'markdown', source: '# x' },
              { cell_type: 'code', source },
            ]),
            'nb.ipynb',
          ),
        (e: unknown) => e instanceof NotebookFormatError && re.test(e.message),
      );
      const file = path.join(dir, 'bad.ipynb');
      fs.writeFileSync(
        file,
        nbJson([
          { cell_type: 'markdown', source: '# x' },
          { cell_type: 'code', source, outputs: [], metadata: {}, execution_count: null },
        ]),
      );
      const before = sha256(file);
      const r = await cli(file);
      assert.equal(r.code, 1);
      assert.match(r.err, re);
      assert.match(r.err, /\(the file was not changed\)$/);
      assert.equal(sha256(file), before);
      assert.ok(!fs.existsSync(path.join(dir, 'bad.out.ipynb')), 'nothing was written');
    }
    // what nbformat allows still reads: a list of strings, a string, no source at all
    assert.equal(
      parseNotebook(nbJson([{ cell_type: 'code', source: ['a\n', 'b'] }, { cell_type: 'code', source: 'c' }, { cell_type: 'code' }]))
        .cells.map((c) => c.source)
        .join('|'),
      'a\nb|c|',
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('invalid UTF-8 is an error, not U+FFFD in the code', async () => {
  assert.throws(
    () => decodeNotebook(Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x7d]), 'x.ipynb'),
    /x\.ipynb is not UTF-8 text \(an invalid byte at or after offset 2\)/,
  );
  assert.equal(decodeNotebook(Buffer.from('{"a": "é"}')), '{"a": "é"}');
  const dir = tempDir();
  try {
    const file = path.join(dir, 'latin.ipynb');
    fs.writeFileSync(
      file,
      Buffer.concat([
        Buffer.from(nbJson([{ cell_type: 'code', source: 'const s = "caf' }]).slice(0, -20)),
        Buffer.from([0xe9]),
        Buffer.from('"}]}'),
      ]),
    );
    const r = await cli(file);
    assert.equal(r.code, 1);
    assert.match(r.err, /is not UTF-8 text/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a notebook whose kernel language is not ours is refused with a clear message (--kernel linger runs it)', async () => {
  const py = { kernelspec: { name: 'python3', display_name: 'Python 3', language: 'python' }, language_info: { name: 'python' } };
  const nb = parseNotebook(nbJson([{ cell_type: 'code', source: 'print(1)' }], py));
  assert.equal(foreignKernel(nb), 'its kernel language is "python" (kernel "python3"), and the Linger kernel runs TypeScript');
  assert.equal(foreignKernel(parseNotebook(nbJson([], { kernelspec: { name: 'linger', language: 'typescript' } }))), undefined);
  assert.equal(foreignKernel(parseNotebook(nbJson([], {}))), undefined, 'no language named: ours');
  assert.equal(foreignKernel(parseNotebook(nbJson([], { language_info: { name: 'JavaScript' } }))), undefined);
  const dir = tempDir();
  try {
    const file = path.join(dir, 'py.ipynb');
    fs.writeFileSync(file, nbJson([{ cell_type: 'code', source: 'print(1)' }], py));
    await assert.rejects(runNotebook(file), /py\.ipynb is not a Linger notebook: its kernel language is "python" .*pass --kernel linger/);
    const r = await cli(file);
    assert.equal(r.code, 1);
    assert.match(r.err, /is not a Linger notebook/);
    assert.ok(!fs.existsSync(path.join(dir, 'py.out.ipynb')));
    const bad = await cli(file, '--kernel', 'python3');
    assert.equal(bad.code, 2);
    assert.match(bad.err, /--kernel can only be linger/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a FIFO, a folder or a symlink loop named *.ipynb: its own message, nothing blocks', async () => {
  const dir = tempDir();
  try {
    const fifo = path.join(dir, 'f.ipynb');
    execFileSync('mkfifo', [fifo]);
    const loop = path.join(dir, 'loop.ipynb');
    fs.symlinkSync(path.join(dir, 'loop2.ipynb'), loop);
    fs.symlinkSync(loop, path.join(dir, 'loop2.ipynb'));
    fs.mkdirSync(path.join(dir, 'd.ipynb'));
    assert.match((await cli(fifo)).err, /f\.ipynb: is a FIFO \(named pipe\), not a notebook file/);
    assert.match((await cli(loop)).err, /loop\.ipynb: a symbolic link loop/);
    assert.match((await cli(path.join(dir, 'd.ipynb'))).err, /d\.ipynb: is a directory, not a notebook file/);
    await assert.rejects(runNotebook(fifo), /is a FIFO/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('out of memory in a cell is reported as such', async () => {
  // a stuck cell while the machine is out of memory is named out of memory, not "never reaches a step"
  assert.match(
    stuckCellMessage(3000, { rss: 7.5 * 2 ** 30, total: 8 * 2 ** 30, free: 0.1 * 2 ** 30 }),
    /^the cell ran out of memory: the kernel holds 7\.5 GiB of the machine's 8\.0 GiB/,
  );
  assert.match(
    stuckCellMessage(3000, { rss: 2 ** 30, total: 8 * 2 ** 30, free: 4 * 2 ** 30 }),
    /^the cell did not reach an interruptible step within 3 s/,
  );
  // a cell that fills the kernel's heap: the thread ends, and the cell says why
  const s = new KernelSession({ notebookDir: os.tmpdir(), heapLimitMb: 64 });
  try {
    const outputs: Array<{ output_type: string; evalue?: string }> = [];
    const r = await s.execute('const keep: number[][] = [];\nfor (;;) keep.push(new Array(1e5).fill(Math.random()));', {
      onOutput: (o) => outputs.push(o),
    });
    assert.equal(r.status, 'error');
    assert.equal(r.restarted, true);
    assert.match(r.evalue ?? '', /the cell ran out of memory \(the kernel's JavaScript heap is full\)/);
  } finally {
    await s.dispose();
  }
});
