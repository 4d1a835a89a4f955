// The collectives of data-parallel training (SyncBatchNorm's sums, the quantizers' maxima, the
// gradients): N threads that share one SharedArrayBuffer and meet at barriers (Atomics), so no
// message is copied per step. Every rank calls the same collectives in the same order (they run
// the same model on the same code path); each reduces the slots in rank order, so every rank gets
// the bit-identical result.

/** A rank stopped the run (its error, or the coordinator's interrupt): every waiting rank throws this. */
export class GroupAbortedError extends Error {
  constructor(
    readonly byRank: number,
    detail: string,
  ) {
    super(detail);
    this.name = 'GroupAbortedError';
  }
}

// control words (Int32)
const GEN = 0; // barrier generation
const COUNT = 1; // ranks arrived at the current barrier
const ABORT = 2; // 0, or 1 + the rank that aborted
const CONTROL_WORDS = 16;

/** Float64 values per rank and per half of the double-buffered scratch. */
export const SCRATCH = 1 << 14;

export interface GroupBuffers {
  control: SharedArrayBuffer;
  scratch: SharedArrayBuffer;
}

export function createGroupBuffers(size: number): GroupBuffers {
  return {
    control: new SharedArrayBuffer(CONTROL_WORDS * 4),
    scratch: new SharedArrayBuffer(2 * size * SCRATCH * 8),
  };
}

export interface GroupOptions {
  /** give up waiting for the other ranks after this long without progress (ms) */
  stallMs?: number;
  /** how the coordinator learns a worker's error while it waits (receiveMessageOnPort) */
  onAbort?: (rank: number) => string | undefined;
}

export class ProcessGroup {
  private readonly ctl: Int32Array;
  private readonly scratch: Float64Array;
  private calls = 0;
  private readonly stallMs: number;

  constructor(
    readonly rank: number,
    readonly size: number,
    bufs: GroupBuffers,
    private readonly opts: GroupOptions = {},
  ) {
    this.ctl = new Int32Array(bufs.control);
    this.scratch = new Float64Array(bufs.scratch);
    this.stallMs = opts.stallMs ?? 600_000;
  }

  /** Stops every rank at its next wait (or now, if waiting). */
  abort(): void {
    Atomics.compareExchange(this.ctl, ABORT, 0, this.rank + 1);
    Atomics.notify(this.ctl, GEN);
    Atomics.notify(this.ctl, COUNT);
  }

  get aborted(): boolean {
    return Atomics.load(this.ctl, ABORT) !== 0;
  }

  private throwAborted(): never {
    const by = Atomics.load(this.ctl, ABORT) - 1;
    const detail = this.opts.onAbort?.(by);
    throw new GroupAbortedError(by, detail ?? (by === this.rank ? 'this rank stopped the run' : `rank ${by} stopped the run`));
  }

  /** Waits until every rank has arrived (sense by generation). */
  barrier(): void {
    if (this.size === 1) return;
    if (this.aborted) this.throwAborted();
    const gen = Atomics.load(this.ctl, GEN);
    if (Atomics.add(this.ctl, COUNT, 1) === this.size - 1) {
      Atomics.store(this.ctl, COUNT, 0);
      Atomics.add(this.ctl, GEN, 1);
      Atomics.notify(this.ctl, GEN);
      return;
    }
    // a short spin first: on a step's critical path the other rank is usually microseconds away
    for (let i = 0; i < 2000; i++) {
      if (Atomics.load(this.ctl, GEN) !== gen) return;
    }
    const start = Date.now();
    while (Atomics.load(this.ctl, GEN) === gen) {
      if (this.aborted) this.throwAborted();
      Atomics.wait(this.ctl, GEN, gen, 100);
      if (Date.now() - start > this.stallMs) {
        Atomics.compareExchange(this.ctl, ABORT, 0, this.rank + 1);
        throw new GroupAbortedError(this.rank, `no progress from the other workers for ${Math.round(this.stallMs / 1000)} s`);
      }
    }
    if (this.aborted) this.throwAborted();
  }

  /**
   * Element-wise sum (or max) over the ranks, in rank order, as float64. Slots alternate between
   * two halves per call, so one barrier per call suffices: a rank writes call k+2's half only after
   * every rank has passed call k+1's barrier, i.e. finished reading call k.
   */
  allReduce(values: ArrayLike<number>, op: 'sum' | 'max' = 'sum'): Float64Array {
    const n = values.length;
    if (this.size === 1) return Float64Array.from(values);
    if (n > SCRATCH) return this.allReduceChunked(values, op);
    const half = (this.calls++ & 1) * this.size * SCRATCH;
    const mine = half + this.rank * SCRATCH;
    for (let i = 0; i < n; i++) this.scratch[mine + i] = values[i];
    this.barrier();
    const out = this.scratch.slice(half, half + n);
    for (let r = 1; r < this.size; r++) {
      const o = half + r * SCRATCH;
      if (op === 'sum') for (let i = 0; i < n; i++) out[i] += this.scratch[o + i];
      else for (let i = 0; i < n; i++) out[i] = Math.max(out[i], this.scratch[o + i]);
    }
    return out;
  }

  private allReduceChunked(values: ArrayLike<number>, op: 'sum' | 'max'): Float64Array {
    const out = new Float64Array(values.length);
    for (let s = 0; s < values.length; s += SCRATCH) {
      const part = Array.prototype.slice.call(values, s, Math.min(values.length, s + SCRATCH)) as number[];
      out.set(this.allReduce(part, op), s);
    }
    return out;
  }

  /** max over the ranks of one number. */
  max(v: number): number {
    return this.allReduce([v], 'max')[0];
  }
}
