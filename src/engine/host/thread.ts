// Starting one of the engine's worker threads: its bundle beside this one (dist/), or its
// TypeScript source through tsx (tests and `npm run` scripts run the sources).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker, WorkerOptions } from 'node:worker_threads';

/** `bundle` is the file name in dist/, `source` the absolute path of its .ts entry. */
export function startThread(bundle: string, source: string, workerData: unknown, opts: WorkerOptions = {}): Worker {
  const bundled = path.join(__dirname, bundle);
  const options = { workerData, stdout: true, stderr: true, ...opts };
  if (fs.existsSync(bundled)) return new Worker(bundled, options);
  // resolved here: the worker's eval code resolves from the current directory, which may be anywhere
  return new Worker(`require(${JSON.stringify(require.resolve(['tsx', 'cjs'].join('/')))}); require(${JSON.stringify(source)});`, {
    ...options,
    eval: true,
  });
}
