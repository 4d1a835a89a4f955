// Runs a job on a worker thread (worker.ts) for the engine process: relays its progress, turns a
// JSON-RPC cancellation into the worker's shared cancel flag, and settles with its result.
import * as path from 'node:path';
import type { Worker } from 'node:worker_threads';
import { startThread } from './thread';
import type { DemoOptions, DemoResult } from '../services/demo';
import type { WorkerMessage } from './worker';

export interface JobHooks {
  onProgress(p: { phase: string; step: number; steps: number; detail?: string }): void;
  onLog(line: string): void;
  /** resolves when the caller cancels */
  cancelled: Promise<void>;
}

export class JobCancelledError extends Error {
  constructor(what: string) {
    super(`${what} was cancelled (checkpoints saved before that are kept)`);
    this.name = 'JobCancelledError';
  }
}

/** The worker: beside the bundle (dist/hostWorker.js), or the TypeScript source through tsx (tests). */
function startWorker(workerData: unknown): Worker {
  return startThread('hostWorker.js', path.join(__dirname, 'worker.ts'), workerData);
}

export function runDemoJob(options: Omit<DemoOptions, 'onProgress'>, hooks: JobHooks): Promise<DemoResult> {
  const cancel = new SharedArrayBuffer(4);
  const worker = startWorker({ job: 'demo', options, cancel });
  worker.stdout.on('data', (d: Buffer) => process.stderr.write(d));
  worker.stderr.on('data', (d: Buffer) => process.stderr.write(d));
  void hooks.cancelled.then(() => Atomics.store(new Int32Array(cancel), 0, 1));
  return new Promise<DemoResult>((resolve, reject) => {
    worker.on('message', (m: WorkerMessage) => {
      if (m.type === 'progress') hooks.onProgress(m);
      else if (m.type === 'log') hooks.onLog(m.line);
      else if (m.type === 'done') resolve(m.result as DemoResult);
      else reject(m.cancelled ? new JobCancelledError('the demo') : new Error(m.message));
      if (m.type === 'done' || m.type === 'error') void worker.terminate();
    });
    worker.on('error', reject);
    worker.on('exit', (code) => reject(new Error(`the job's worker thread ended (exit code ${code})`)));
  });
}
