// A long job of the engine process (the two-stage demo) on a worker thread: training is one long
// synchronous loop, so it runs here, with its own TF.js backend, while the process's main thread
// keeps answering. Progress and log lines go to the main thread as messages; cancellation is a
// shared-memory flag the job reads at every step (a throw there ends the job; checkpoints already
// saved stay).
import { parentPort, workerData } from 'node:worker_threads';
import { runDemo, DemoOptions } from '../services/demo';

export class JobCancelled extends Error {
  constructor() {
    super('cancelled');
    this.name = 'JobCancelled';
  }
}

export type WorkerMessage =
  | { type: 'progress'; phase: string; step: number; steps: number; detail?: string }
  | { type: 'log'; line: string }
  | { type: 'done'; result: unknown }
  | { type: 'error'; message: string; cancelled: boolean };

if (parentPort && workerData?.job === 'demo') {
  const port = parentPort;
  const cancel = new Int32Array(workerData.cancel as SharedArrayBuffer);
  const post = (m: WorkerMessage) => port.postMessage(m);
  const options: DemoOptions = {
    ...(workerData.options as Omit<DemoOptions, 'onProgress'>),
    onProgress: (p) => {
      if (Atomics.load(cancel, 0) === 1) throw new JobCancelled();
      post({ type: 'progress', ...p });
    },
  };
  runDemo(options, (line) => post({ type: 'log', line })).then(
    (result) => post({ type: 'done', result }),
    (e: unknown) => post({ type: 'error', message: e instanceof Error ? e.message : String(e), cancelled: e instanceof JobCancelled }),
  );
}
