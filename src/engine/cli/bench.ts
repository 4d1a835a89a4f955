import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { initBackend } from '../backend/select';
import * as F from '../nn/functional';
import { manualSeed } from '../random';
import { rand, tensor, tidy } from '../tensor';
import { DemoCNN } from '../train/demoCnn';
import { SGD } from '../train/optim';

export interface BenchOptions { steps: number; warmup: number; batch: number; torch: boolean; python: string; }

export interface BenchRow { name: string; ms: number; }
export interface BenchResult { backend: string; threads: number; rows: BenchRow[]; torch?: { version: string; ms: number; error?: string }; }

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Median ms of a demo-CNN training step (SGD lr 0.05, momentum 0.9) after warm-up. */
export function timeTrainingStep(o: { steps: number; warmup: number; batch: number }): number {
  manualSeed(0);
  const model = new DemoCNN();
  const opt = new SGD(model.parameters(), { lr: 0.05, momentum: 0.9 });
  const x = rand([o.batch, 1, 28, 28]);
  const y = tensor(Int32Array.from({ length: o.batch }, (_, i) => i % 10), [o.batch], 'int32');
  const times: number[] = [];
  for (let i = 0; i < o.warmup + o.steps; i++) {
    const t0 = performance.now();
    opt.step(() => F.crossEntropy(model(x), y));
    if (i >= o.warmup) times.push(performance.now() - t0);
  }
  tidy(() => { x.dispose(); y.dispose(); });
  return median(times);
}

function torchPeerScript(): string {
  // dist/cli.js → ../scripts; src/engine/cli/bench.ts → ../../../scripts
  for (const up of ['..', path.join('..', '..', '..')]) {
    const p = path.resolve(__dirname, up, 'scripts', 'bench', 'torch_peer.py');
    if (fs.existsSync(p)) return p;
  }
  throw new Error('scripts/bench/torch_peer.py not found next to the CLI');
}

/** Runs the PyTorch peer with the same number of threads; undefined when torch is not installed. */
export function timeTorchStep(o: BenchOptions, threads: number): { version: string; ms: number; error?: string } | undefined {
  const probe = spawnSync(o.python, ['-c', 'import torch'], { encoding: 'utf8' });
  if (probe.status !== 0) return undefined;
  const r = spawnSync(o.python, [torchPeerScript(), '--threads', String(threads), '--steps', String(o.steps), '--warmup', String(o.warmup), '--batch', String(o.batch)], { encoding: 'utf8' });
  if (r.status !== 0) return { version: '?', ms: NaN, error: (r.stderr || '').trim().split('\n').slice(-3).join(' ') };
  const j = JSON.parse(r.stdout.trim().split('\n').pop()!) as { torch: string; median_ms: number };
  return { version: j.torch, ms: j.median_ms };
}

export async function runBench(o: BenchOptions, log: (s: string) => void): Promise<BenchResult> {
  const backend = await initBackend();
  // wasm runs single-threaded under Node; tfjs-node uses its own thread pool (not comparable 1:1)
  const threads = 1;
  log(`backend: ${backend}, threads: ${threads}, batch ${o.batch}, median of ${o.steps} steps after ${o.warmup} warm-up`);
  const rows: BenchRow[] = [];
  const ms = timeTrainingStep(o);
  rows.push({ name: 'float training step (demo CNN)', ms });
  log(`engine float step: ${ms.toFixed(1)} ms`);
  const result: BenchResult = { backend, threads, rows };
  if (o.torch) {
    const t = timeTorchStep(o, threads);
    if (!t) log(`PyTorch peer skipped: ${o.python} has no torch (apt-get install python3-torch)`);
    else if (t.error) log(`PyTorch peer failed: ${t.error}`);
    else {
      result.torch = t;
      log(`PyTorch ${t.version} float step (${threads} thread): ${t.ms.toFixed(1)} ms`);
      log(`ratio engine/PyTorch: ${(ms / t.ms).toFixed(2)}×`);
    }
  }
  return result;
}
