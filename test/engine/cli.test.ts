import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const root = path.join(__dirname, '..', '..');
function linger(args: string[], env: NodeJS.ProcessEnv = {}) {
  return spawnSync(process.execPath, ['--import', 'tsx', path.join(root, 'src', 'engine', 'cli.ts'), ...args], {
    encoding: 'utf8',
    cwd: root,
    env: { ...process.env, ...env },
  });
}

test('linger demo runs the two-stage path on a slice of Fashion-MNIST, writes a checkpoint per stage, reports JSON', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'linger-demo-'));
  try {
    const r = linger(['demo', '--limit', '60', '--epochs', '1,1,1', '--checkpoints', dir, '--experiment', 'smoke', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout) as {
      trainSamples: number;
      testSamples: number;
      floatAccuracy: number;
      fixedAccuracy: number;
      stages: { stage: string; checkpoint: string }[];
      quantReport: { path: string; sqnrDb: number }[];
    };
    assert.equal(j.trainSamples, 600);
    assert.equal(j.testSamples, 100);
    assert.deepEqual(
      j.stages.map((s) => s.stage),
      ['float', 'traced', 'fixed'],
    );
    for (const s of j.stages) assert.ok(fs.existsSync(s.checkpoint), s.checkpoint);
    assert.equal(j.stages[2].checkpoint, path.join(dir, 'smoke', 'fixed.safetensors'));
    assert.ok(j.fixedAccuracy > 0.3, `fixed accuracy ${j.fixedAccuracy} after 10 QAT steps is above chance`);
    assert.deepEqual(
      j.quantReport.map((q) => q.path),
      ['conv1', 'conv2', 'fc1', 'fc2'],
    );
    assert.match(r.stderr, /backend: (wasm|cpu|tensorflow)/);
    assert.match(r.stderr, /float epoch 1\/1 100%/);
    assert.match(r.stderr, /QAT epoch 1\/1 100%/);
    assert.match(r.stderr, /\(conv1\): NormalizeConvBN2d\(/, 'prints the model after traceLayers');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('linger bench --json: stdout is one JSON object with the engine and PyTorch on 1 and N threads', () => {
  // a short run (2 steps): the shape of the report, not its numbers (speed is measured by npm run bench)
  const r = linger(['bench', '--json', '--steps', '2', '--warmup', '1', '--workers', '2', '--no-epoch']);
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout) as Record<string, unknown> & { workers: number; cpu: string; cores: number };
  assert.equal(j.workers, 2);
  assert.ok(j.cpu && j.cores >= 1);
  const torch = spawnSync('/usr/bin/python3', ['-c', 'import torch']).status === 0;
  for (const k of ['float', 'fixed']) {
    const p = j[k] as Record<string, number | null>;
    assert.deepEqual(Object.keys(p).sort(), ['engine1_ms', 'engineN_ms', 'torch1_ms', 'torchN_ms']);
    for (const key of ['engine1_ms', 'engineN_ms', ...(torch ? ['torch1_ms', 'torchN_ms'] : [])]) {
      assert.ok(typeof p[key] === 'number' && p[key]! > 0, `${k}.${key} = ${p[key]}`);
    }
  }
  const seq = j.sequence as Record<string, number | null>;
  for (const k of ['float_ms', 'fixed_ms', 'float_eval_ms', 'fixed_eval_ms', 'lstm_float_ms', 'lstm_fixed_ms']) {
    assert.ok(seq[k]! > 0, `sequence.${k}: ${JSON.stringify(seq)}`);
  }
  if (torch) assert.ok(seq.torch_float_ms! > 0, JSON.stringify(seq));
  // every row has its median inside its spread, the GRU rows and PyTorch's (taking turns) among them
  const rows = j.rows as { name: string; ms: number; p25: number; p75: number }[];
  for (const row of rows) assert.ok(row.p25 <= row.ms && row.ms <= row.p75, JSON.stringify(row));
  assert.ok(rows.some((row) => /GRUInt/.test(row.name)) && rows.some((row) => /LSTMInt/.test(row.name)));
  if (torch) assert.ok(rows.some((row) => /^PyTorch float step, 2 threads$/.test(row.name)));
  assert.match(r.stderr, /CPU: /);
});

test('usage errors exit 2 with a message; LINGER_BACKEND is checked', () => {
  const bad = linger(['demo', '--epochs', 'many']);
  assert.equal(bad.status, 2);
  assert.ok(bad.stderr.includes("--epochs expects N or F,S,Q (whole numbers), got 'many'"), bad.stderr);
  const unknown = linger(['frobnicate']);
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /unknown command 'frobnicate'/);
  const backend = linger(['info'], { LINGER_BACKEND: 'gpu9000' });
  assert.equal(backend.status, 1);
  assert.match(backend.stderr, /LINGER_BACKEND=gpu9000: unknown backend; use one of tensorflow, wasm, cpu/);
});

test('linger info names the backend and its memory', () => {
  const r = linger(['info']);
  assert.equal(r.status, 0, r.stderr);
  const out = r.stdout + r.stderr;
  assert.match(out, /^backend: (wasm|cpu|tensorflow)$/m);
  assert.match(out, /^memory: \d+ tensors, [\d.]+ (B|KiB|MiB)(; wasm heap [\d.]+ MiB of at most 4 GiB)?$/m);
  assert.match(out, /^dropped tensors: released at safe points, inside synchronous loops too$/m);
});

test('linger demo checks every option before any work: --bits 99, --epochs, --limit, names, folders, the float checkpoint', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'linger-demo-opts-'));
  try {
    const file = path.join(dir, 'a-file');
    fs.writeFileSync(file, 'x');
    const cases: [string[], RegExp][] = [
      [['--bits', '99'], /bits must be a whole number from 2 to 16 \(linger\.init's range\), got 99/],
      [['--bits', '7.5'], /bits must be a whole number from 2 to 16/],
      [['--epochs', '1,-1,1'], /--epochs expects N or F,S,Q/],
      [['--limit', '0'], /the limit \(images per class\) must be a whole number ≥ 1, got 0/],
      [['--batch', '0'], /the batch size must be a whole number from 1 to 65536, got 0/],
      [['--lr=-1'], /the learning rate must be a number > 0, got -1/],
      [['--experiment', '../escape'], /the experiment name must be letters, digits/],
      [['--checkpoints', file], /the checkpoints folder .*a-file is not a folder/],
      [
        ['--float-checkpoint', path.join(dir, 'missing.safetensors')],
        /the float checkpoint cannot be read: .*missing\.safetensors: no such file/,
      ],
    ];
    for (const [args, re] of cases) {
      const t0 = performance.now();
      const r = linger(['demo', '--checkpoints', dir, ...args]);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re, args.join(' '));
      assert.doesNotMatch(r.stdout + r.stderr, /loading|backend:/, 'nothing started');
      assert.ok(performance.now() - t0 < 30_000);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("two demo runs into one experiment folder: the second stops with an error naming the first; a dead run's lock is taken over", async () => {
  const { lockExperiment } = await import('../../src/engine/services/demo');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'linger-demo-lock-'));
  try {
    const exp = path.join(dir, 'demo');
    const release = lockExperiment(exp);
    assert.throws(
      () => lockExperiment(exp),
      new RegExp(
        `${exp.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is in use by another run \\(pid ${process.pid}, started .*\\): wait for it to finish, or give this run its own --experiment NAME`,
      ),
    );
    // the same through the CLI, before any work
    const r = linger(['demo', '--checkpoints', dir, '--experiment', 'demo', '--limit', '1']);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /is in use by another run \(pid \d+/);
    assert.doesNotMatch(r.stdout, /loading/);
    release();
    assert.ok(!fs.existsSync(path.join(exp, '.lock')));
    // a lock left by a process that is gone is taken over
    fs.writeFileSync(path.join(exp, '.lock'), JSON.stringify({ pid: 2 ** 22 + 12345, host: os.hostname(), started: 'then' }));
    lockExperiment(exp)();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
