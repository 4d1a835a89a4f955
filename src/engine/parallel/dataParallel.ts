// Data-parallel training on N threads (issue: both cores). The calling thread is rank 0 and keeps
// the user's model and optimizer; ranks 1…N−1 are worker threads, each with a replica of the model
// and its own wasm backend. Every step:
//   rank 0 copies the batch into shared memory → all ranks take their rows and run forward and
//   backward, agreeing on the whole batch's BN statistics and quantizer maxima (backend/shard.ts) → rank 0
//   adds the workers' gradients to its own (in rank order), steps its optimizer and writes the new
//   parameters to shared memory → the workers load them.
// So N threads compute what one computes (up to float summation order), the optimizer state lives
// once, and nothing but the batch and the parameters crosses between threads.
import * as os from 'node:os';
import * as path from 'node:path';
import { MessageChannel, MessagePort, receiveMessageOnPort, Worker } from 'node:worker_threads';
import { tf } from '../backend/tf';
import { startThread } from '../host/thread';
import * as F from '../nn/functional';
import { Module, Parameter, transformsOf } from '../nn/module';
import { rng } from '../random';
import { moduleTree } from '../state/checkpoint';
import { Tensor } from '../tensor';
import { Optimizer } from '../train/optim';
import { createGroupBuffers, GroupAbortedError, GroupBuffers, ProcessGroup } from './group';
import { ModelRecipe, recipeOf } from './recipe';
import { inShard } from '../backend/shard';

/** What the workers compute a loss with (a function cannot be sent to another thread). */
export type LossName = 'crossEntropy' | 'mse';

/** Commands in the step header. */
export const CMD = { step: 1, local: 2, state: 3, stop: 4 } as const;

// header words (Int32): command, rows, x rank + dims, y rank + dims, dtypes
export const H = { cmd: 0, rows: 1, xRank: 2, xDims: 3, yRank: 11, yDims: 12, xInt: 20, yInt: 21, words: 24 } as const;

/** The shared memory of one data-parallel run (besides the group's). */
export interface StepBuffers {
  header: SharedArrayBuffer;
  /** the generator's state at the start of the step (dropout masks) */
  rng: SharedArrayBuffer;
  x: SharedArrayBuffer;
  y: SharedArrayBuffer;
  /** every parameter, flat, in model.parameters() order */
  params: SharedArrayBuffer;
  /** every buffer as float64 (broadcast after a step rank 0 took alone) */
  buffers: SharedArrayBuffer;
  /** per rank: its gradients (flat, as params) */
  grads: SharedArrayBuffer;
  /** per rank: its share of the loss */
  losses: SharedArrayBuffer;
}

export interface WorkerInit {
  rank: number;
  size: number;
  group: GroupBuffers;
  bufs: StepBuffers;
  recipe: ModelRecipe;
  /** the transforms and module tree to replay (as a checkpoint's metadata) */
  transforms: string[];
  moduleTree: ReturnType<typeof moduleTree>;
  stage: string;
  /** the first row of the first batch: what the replayed traceLayers runs on (any dtype) */
  dummy: { dtype: 'float32' | 'int32'; shape: number[]; data: Float32Array | Int32Array };
  state: [string, { dtype: 'float32' | 'int32'; shape: number[]; data: Float32Array | Int32Array }][];
  /** model.parameters() indices the optimizer updates (the workers compute their gradients) */
  trained: number[];
  loss: LossName;
  port: MessagePort;
}

/** The rows [start, end) of a batch of n rows that rank r of N takes. */
export function rowsOf(r: number, size: number, n: number): [number, number] {
  return [Math.floor((r * n) / size), Math.floor(((r + 1) * n) / size)];
}

/** The default number of workers: one per core. */
export function defaultWorkers(): number {
  return Math.max(1, os.availableParallelism?.() ?? os.cpus().length);
}

/** Why `model` must train on one thread, or null when it can use workers. */
export function whyNotParallel(model: Module): string | null {
  if (!recipeOf(model)) {
    return `${model.typeName()} was not made by a model file, an ONNX import, DemoCNN or DemoGRU, so worker threads cannot build it (e.g. its class is defined in a notebook cell): training on one thread`;
  }
  return null;
}

export class DataParallel {
  private readonly group: ProcessGroup;
  private readonly workers: Worker[] = [];
  private readonly ports: MessagePort[] = [];
  private readonly params: Parameter[];
  private readonly offsets: number[];
  private readonly buffers;
  private readonly header: Int32Array;
  private closed = false;
  /** Runs whose workers have not been stopped yet. */
  static open = 0;

  private constructor(
    readonly model: Module,
    readonly opt: Optimizer,
    readonly size: number,
    private readonly bufs: StepBuffers,
    groupBufs: GroupBuffers,
    private readonly lossFn: (out: Tensor, y: Tensor) => Tensor,
  ) {
    this.group = new ProcessGroup(0, size, groupBufs, { onAbort: (r) => this.workerError(r) });
    this.params = model.parameters();
    this.offsets = offsetsOf(this.params);
    this.buffers = model.buffers();
    this.header = new Int32Array(bufs.header);
  }

  /**
   * Starts N−1 workers for `model` (which must have a recipe: whyNotParallel), sized for batches
   * like `sample`; returns when every replica is built and loaded (or throws the worker's error).
   */
  static start(
    model: Module,
    opt: Optimizer,
    o: { workers: number; sample: { x: Tensor; y: Tensor }; maxRows: number; loss?: LossName },
  ): DataParallel {
    const recipe = recipeOf(model);
    if (!recipe) throw new Error(whyNotParallel(model)!);
    const params = model.parameters();
    const index = new Map(params.map((p, i) => [p, i]));
    const trained = opt.params.map((p) => {
      const i = index.get(p);
      if (i === undefined) throw new Error('data-parallel training: the optimizer updates a tensor that is not a parameter of the model');
      return i;
    });
    const n = o.workers;
    const total = offsetsOf(params).at(-1)!;
    const bufferCount = model.buffers().reduce((a, b) => a + b.size, 0);
    const rowX = o.sample.x.size / o.sample.x.shape[0];
    const rowY = o.sample.y.size / Math.max(1, o.sample.y.shape[0]);
    const bufs: StepBuffers = {
      header: new SharedArrayBuffer(H.words * 4),
      rng: new SharedArrayBuffer(5 * 8),
      x: new SharedArrayBuffer(o.maxRows * rowX * 4),
      y: new SharedArrayBuffer(o.maxRows * rowY * 4),
      params: new SharedArrayBuffer(total * 4),
      buffers: new SharedArrayBuffer(bufferCount * 8),
      grads: new SharedArrayBuffer(n * total * 4),
      losses: new SharedArrayBuffer(n * 8),
    };
    const groupBufs = createGroupBuffers(n);
    const lossName = o.loss ?? 'crossEntropy';
    const dp = new DataParallel(model, opt, n, bufs, groupBufs, lossFunction(lossName));
    DataParallel.open++;
    const sd = model.stateDict();
    const state: WorkerInit['state'] = Object.entries(sd).map(([k, t]) => [
      k,
      { dtype: t.dtype as 'float32' | 'int32', shape: [...t.shape], data: t.dataSync() as Float32Array | Int32Array },
    ]);
    const base = {
      size: n,
      group: groupBufs,
      bufs,
      recipe,
      transforms: [...transformsOf(model)],
      moduleTree: moduleTree(model),
      stage: model.stage(),
      dummy: {
        dtype: o.sample.x.dtype as 'float32' | 'int32',
        shape: [1, ...o.sample.x.shape.slice(1)],
        data: (o.sample.x.dataSync() as Float32Array | Int32Array).slice(0, rowX),
      },
      state,
      trained,
      loss: lossName,
    };
    try {
      for (let r = 1; r < n; r++) {
        const { port1, port2 } = new MessageChannel();
        dp.ports.push(port1);
        const init: WorkerInit = { ...base, rank: r, port: port2 };
        const w = startThread('trainWorker.js', path.join(__dirname, 'worker.ts'), init, { transferList: [port2] });
        // whatever a worker prints goes to stderr: stdout may carry a JSON result (linger bench --json)
        w.stdout.on('data', (d: Buffer) => process.stderr.write(d));
        w.stderr.on('data', (d: Buffer) => process.stderr.write(d));
        dp.workers.push(w);
      }
      // the workers meet here once their replica is built and loaded
      dp.group.barrier();
    } catch (e) {
      dp.close();
      throw asWorkerError(e);
    }
    return dp;
  }

  private workerError(rank: number): string | undefined {
    if (rank <= 0) return undefined;
    const port = this.ports[rank - 1];
    // the worker posts its error before it raises the abort flag
    for (let i = 0; i < 100; i++) {
      const m = port && receiveMessageOnPort(port);
      if (m) return `worker ${rank}: ${(m.message as { error: string }).error}`;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
    }
    return `worker ${rank} stopped without saying why`;
  }

  /** Runs `fn` and, if it throws, stops every worker before passing the error on. */
  private guarded<T>(fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      this.group.abort();
      this.close();
      throw asWorkerError(e);
    }
  }

  /** One training step of `opt` on the batch (x, y) over every rank; returns the batch's loss. */
  step(x: Tensor, y: Tensor): number {
    if (this.closed) throw new Error('data-parallel training: the workers were stopped');
    return this.guarded(() => {
      const n = x.shape[0];
      const h = this.header;
      if (n < this.size) {
        // too few rows to give every rank one: rank 0 takes the step alone, the workers copy the result
        h[H.cmd] = CMD.local;
        this.group.barrier();
        const loss = this.opt.step(() => this.lossFn(this.model(x) as Tensor, y));
        this.writeParams();
        this.writeBuffers();
        this.group.barrier();
        return loss;
      }
      this.writeBatch(x, y);
      new Float64Array(this.bufs.rng).set(rng().getState());
      h[H.cmd] = CMD.step;
      h[H.rows] = n;
      this.group.barrier();
      const [start, end] = rowsOf(0, this.size, n);
      const xs = shardTensor(this.bufs.x, h, 'x', start, end);
      const ys = shardTensor(this.bufs.y, h, 'y', start, end);
      try {
        const loss = inShard({ group: this.group, start, end, total: n }, () =>
          this.opt.step(
            () => this.lossFn(this.model(xs) as Tensor, ys).mul((end - start) / n),
            (grads, own) => this.reduce(grads, own),
          ),
        );
        this.writeParams();
        this.group.barrier();
        return loss;
      } finally {
        xs.dispose();
        ys.dispose();
      }
    });
  }

  /** The whole batch's gradient for each of the optimizer's parameters: rank 0's plus each worker's, in rank order. */
  private reduce(grads: (tf.Tensor | undefined)[], own: number): { grads: tf.Tensor[]; loss: number } {
    this.group.barrier(); // the workers' gradients are written
    const all = new Float32Array(this.bufs.grads);
    const losses = new Float64Array(this.bufs.losses);
    const total = this.offsets.at(-1)!;
    let loss = own;
    for (let r = 1; r < this.size; r++) loss += losses[r];
    const index = new Map(this.params.map((p, i) => [p, i]));
    const out = this.opt.params.map((p, k) => {
      const j = index.get(p)!;
      const g = grads[k];
      const sum = g ? (g.dataSync() as Float32Array).slice() : new Float32Array(p.size);
      const off = this.offsets[j];
      for (let r = 1; r < this.size; r++) {
        const base = r * total + off;
        for (let i = 0; i < sum.length; i++) sum[i] += all[base + i];
      }
      return tf.tensor(sum, p.raw.shape);
    });
    return { grads: out, loss };
  }

  private writeBatch(x: Tensor, y: Tensor): void {
    const h = this.header;
    for (const [t, buf, rankAt, dimsAt, intAt] of [
      [x, this.bufs.x, H.xRank, H.xDims, H.xInt],
      [y, this.bufs.y, H.yRank, H.yDims, H.yInt],
    ] as const) {
      const d = t.dataSync();
      if (d.length * 4 > buf.byteLength) {
        throw new Error(`data-parallel training: a batch of ${t.shape[0]} rows is larger than the first batch this run was sized for`);
      }
      h[rankAt] = t.rank;
      t.shape.forEach((s, i) => {
        h[dimsAt + i] = s;
      });
      h[intAt] = t.dtype === 'int32' ? 1 : 0;
      (t.dtype === 'int32' ? new Int32Array(buf) : new Float32Array(buf)).set(d);
    }
  }

  private writeParams(): void {
    const flat = new Float32Array(this.bufs.params);
    this.params.forEach((p, i) => flat.set(p.raw.dataSync() as Float32Array, this.offsets[i]));
  }

  private writeBuffers(): void {
    const flat = new Float64Array(this.bufs.buffers);
    let off = 0;
    for (const b of this.buffers) {
      flat.set(b.raw.dataSync(), off);
      off += b.size;
    }
  }

  /** Every worker's state dict, for checking the replicas agree (tests). */
  replicaStates(): Record<string, { dtype: string; shape: number[]; data: Float32Array | Int32Array }>[] {
    return this.guarded(() => {
      this.header[H.cmd] = CMD.state;
      this.group.barrier();
      this.group.barrier(); // every worker has posted its state
      return this.ports.map((p, i) => {
        const m = receiveMessageOnPort(p);
        if (!m) throw new Error(`worker ${i + 1} did not send its state`);
        return (m.message as { state: Record<string, { dtype: string; shape: number[]; data: Float32Array | Int32Array }> }).state;
      });
    });
  }

  /** Stops the workers (after the current step; at once if the run was aborted). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    DataParallel.open--;
    if (!this.group.aborted) {
      this.header[H.cmd] = CMD.stop;
      try {
        this.group.barrier();
      } catch {
        /* a worker already gone */
      }
    }
    for (const w of this.workers) void w.terminate();
    for (const p of this.ports) p.close();
  }
}

/** A worker's failure as the coordinator reports it ("worker 1: …"); other errors pass unchanged. */
function asWorkerError(e: unknown): unknown {
  if (!(e instanceof GroupAbortedError)) return e;
  const err = new Error(e.message);
  err.name = 'WorkerError';
  return err;
}

export function offsetsOf(params: { size: number }[]): number[] {
  const out = [0];
  for (const p of params) out.push(out.at(-1)! + p.size);
  return out;
}

/** Rows [start, end) of the batch tensor in shared memory (x or y), as a fresh tensor. */
export function shardTensor(buf: SharedArrayBuffer, h: Int32Array, which: 'x' | 'y', start: number, end: number): Tensor {
  const rank = h[which === 'x' ? H.xRank : H.yRank];
  const dimsAt = which === 'x' ? H.xDims : H.yDims;
  const shape = Array.from({ length: rank }, (_, i) => h[dimsAt + i]);
  const row = shape.slice(1).reduce((a, b) => a * b, 1);
  const isInt = h[which === 'x' ? H.xInt : H.yInt] === 1;
  const all = isInt ? new Int32Array(buf) : new Float32Array(buf);
  const part = all.slice(start * row, end * row);
  return new Tensor(tf.tensor(part, [end - start, ...shape.slice(1)], isInt ? 'int32' : 'float32'));
}

export function lossFunction(name: LossName): (out: Tensor, y: Tensor) => Tensor {
  return name === 'mse' ? (o, y) => F.mseLoss(o, y) : (o, y) => F.crossEntropy(o, y);
}
