// Test helpers: run an exported model in onnxruntime-node and compare with the engine.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { Tensor } from '../../../src/engine/index';

export type OptLevel = 'disabled' | 'basic' | 'extended' | 'all';

/** A session with onnxruntime's default options, or with one graph optimization level forced. */
export async function session(file: string, level?: OptLevel): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(file, level ? { graphOptimizationLevel: level } : {});
}

/** Runs a one-input, one-output session on a float tensor (logical NCHW values). */
export async function runSession(s: ort.InferenceSession, x: Tensor | { data: Float32Array; shape: number[] }): Promise<Float32Array> {
  const data = x instanceof Tensor ? (x.dataSync() as Float32Array) : x.data;
  const feeds = { [s.inputNames[0]]: new ort.Tensor('float32', data, x.shape) };
  const r = await s.run(feeds);
  return r[s.outputNames[0]].data as Float32Array;
}

export interface Diff {
  maxAbs: number;
  equalFraction: number;
  n: number;
}
export function diff(a: ArrayLike<number>, b: ArrayLike<number>): Diff {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} vs ${b.length}`);
  let maxAbs = 0,
    eq = 0;
  for (let i = 0; i < a.length; i++) {
    if (Object.is(a[i], b[i]) || a[i] === b[i]) eq++;
    const d = Math.abs(a[i] - b[i]);
    if (d > maxAbs || Number.isNaN(d)) maxAbs = Number.isNaN(d) ? Infinity : d;
  }
  return { maxAbs, equalFraction: a.length ? eq / a.length : 1, n: a.length };
}

/** A fresh temp folder for a test file's exports. */
export function tempDir(tag: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `linger-onnx-${tag}-`));
}
