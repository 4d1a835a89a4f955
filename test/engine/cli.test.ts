import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

const root = path.join(__dirname, '..', '..');
function linger(...args: string[]) {
  return spawnSync(process.execPath, ['--import', 'tsx', path.join(root, 'src', 'engine', 'cli.ts'), ...args], { encoding: 'utf8', cwd: root });
}

test('linger demo runs end to end on a slice of Fashion-MNIST and reports JSON', () => {
  const r = linger('demo', '--limit', '60', '--json');
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout) as { backend: string; trainSamples: number; testSamples: number; floatAccuracy: number };
  assert.equal(j.trainSamples, 600);
  assert.equal(j.testSamples, 100);
  assert.ok(j.floatAccuracy > 0.3, `accuracy ${j.floatAccuracy} after 10 steps is above chance`);
  assert.match(r.stderr, /backend: (wasm|cpu|tensorflow)/);
  assert.match(r.stderr, /float epoch 1\/1 100%/);
});

test('usage errors exit 2 with a message; LINGER_BACKEND is checked', () => {
  const bad = linger('demo', '--epochs', 'many');
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--epochs expects a number, got 'many'/);
  const unknown = linger('frobnicate');
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /unknown command 'frobnicate'/);
  const backend = spawnSync(process.execPath, ['--import', 'tsx', path.join(root, 'src', 'engine', 'cli.ts'), 'info'],
    { encoding: 'utf8', cwd: root, env: { ...process.env, LINGER_BACKEND: 'gpu9000' } });
  assert.equal(backend.status, 1);
  assert.match(backend.stderr, /LINGER_BACKEND=gpu9000: unknown backend; use one of tensorflow, wasm, cpu/);
});
