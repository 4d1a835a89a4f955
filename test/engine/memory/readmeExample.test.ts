// The README's engine example is how users write code (no dispose, no tidy): it runs as written —
// a full Fashion-MNIST epoch over the DataLoader, evaluation, both linger stages and a checkpoint —
// and leaves nothing behind but the model and its optimizer (issue #13).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';

const root = path.resolve(__dirname, '../../..');

/** The TypeScript block under "The engine in a few lines", exactly as the README shows it. */
function readmeExample(): string {
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  const m = /## The engine in a few lines\s+```ts\n([\s\S]*?)\n```/.exec(readme);
  assert.ok(m, 'README.md has the engine example');
  return m[1];
}

test('the README engine example runs as written and leaks nothing', { timeout: 15 * 60_000 }, (t) => {
  const example = readmeExample();
  assert.match(example, /for \(const \{ x, y \} of new data\.DataLoader\(train, \{ batchSize: 64, shuffle: true \}\)\)/);
  assert.doesNotMatch(example, /dispose|tidy/, 'the example manages no memory');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'linger-readme-'));
  const engine = pathToFileURL(path.join(root, 'src/engine/index.ts')).href;
  // the package name resolves to this checkout's source; after the example, what is still alive
  const program =
    example.replace(/from 'linger-studio';/, `from '${engine}';`) +
    `
import { memory as __memory, collectGarbage as __collect } from '${engine}';
__collect();
// the model's state and what the optimizer holds (its parameters — init replaced some of the model's — and momentum slots)
const __state = new Set([...Object.values(model.stateDict()), ...opt.params].map((t) => t.raw)).size;
const __slots = Object.keys(opt.stateDict().state).length;
console.log('README-MEMORY ' + JSON.stringify({ ...__memory(), state: __state, slots: __slots }));
`;
  const file = path.join(dir, 'readme-example.mts');
  fs.writeFileSync(file, program);
  const tsx = pathToFileURL(path.join(root, 'node_modules/tsx/dist/loader.mjs')).href;
  const t0 = Date.now();
  const r = spawnSync(process.execPath, ['--import', tsx, file], { cwd: dir, encoding: 'utf8', maxBuffer: 16 * 2 ** 20 });
  assert.equal(r.status, 0, `the example failed:\n${r.stdout}\n${r.stderr}`);
  const lines = r.stdout.trim().split('\n');
  const accuracy = Number(lines[0]);
  assert.ok(accuracy > 0.8 && accuracy <= 1, `evaluate() printed an accuracy after one epoch: ${lines[0]}`);
  assert.ok(fs.statSync(path.join(dir, 'checkpoints/exp1/fixed.safetensors')).size > 100_000, 'the checkpoint was written');
  const mem = JSON.parse(lines.find((l) => l.startsWith('README-MEMORY '))!.slice('README-MEMORY '.length)) as {
    tensors: number;
    bytes: number;
    state: number;
    slots: number;
    collections: number;
  };
  // alive at the end: the model's state (parameters and buffers), the optimizer's parameters and slots
  t.diagnostic(
    `accuracy ${accuracy}; ${mem.tensors} tensors (${mem.state} of model and optimizer state, ${mem.slots} momentum slots), ` +
      `${(mem.bytes / 2 ** 20).toFixed(2)} MiB, ${mem.collections} collections; ${((Date.now() - t0) / 1000).toFixed(0)} s`,
  );
  assert.ok(mem.tensors <= mem.state + mem.slots + 4, `${mem.tensors} tensors alive, expected about ${mem.state + mem.slots}`);
  fs.rmSync(dir, { recursive: true, force: true });
});
