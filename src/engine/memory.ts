// Tensor memory the way PyTorch users expect it: nobody calls dispose(). Two mechanisms share
// the work (the memory issue, #13):
//   - a module call releases what it made except what it returns (nn/module.ts, a tf.tidy scope);
//   - an engine Tensor the program can no longer reach releases its storage (this file).
// TF.js storage lives outside the JS heap (the wasm heap, or native memory), so V8 does not see
// it as pressure; a FinalizationRegistry on the engine's Tensor objects frees it once V8 has
// collected the wrapper. Registry callbacks only run between event-loop tasks, and a training
// loop is one long synchronous job, so `maybeCollect` (called at safe points: module calls,
// optimizer steps, DataLoader batches) runs a full collection and the pending callbacks
// synchronously whenever the backend has grown by a threshold since the last one.
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { tf } from './backend/tf';

type Registry = FinalizationRegistry<tf.Tensor> & { cleanupSome?: (cb?: (held: tf.Tensor) => void) => void };

/**
 * V8 only offers `gc()` and `FinalizationRegistry.prototype.cleanupSome` behind flags; setting
 * them at run time and taking the functions from a fresh context is how Jest's leak detector
 * reaches `gc()`. Without them (another engine, a newer V8 without cleanupSome) dropped tensors
 * are still released, but only between event-loop tasks.
 */
function syncCollection(): { gc?: () => void; Registry: typeof FinalizationRegistry } {
  try {
    v8.setFlagsFromString('--harmony-weak-refs-with-cleanup-some');
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as (() => void) | undefined;
    const Registry = vm.runInNewContext('FinalizationRegistry') as typeof FinalizationRegistry;
    if (typeof gc === 'function' && typeof (Registry.prototype as Registry).cleanupSome === 'function') return { gc, Registry };
  } catch {
    // fall through: asynchronous release only
  }
  return { Registry: FinalizationRegistry };
}

const sync = syncCollection();

/**
 * Engine Tensors alive per TF.js tensor: views (permute, a module returning its input) share one
 * TF.js tensor, which is released when the last of them is collected.
 */
const owners = new WeakMap<tf.Tensor, number>();

function release(raw: tf.Tensor): void {
  const n = (owners.get(raw) ?? 1) - 1;
  if (n > 0) {
    owners.set(raw, n);
    return;
  }
  owners.delete(raw);
  if (!raw.isDisposed) raw.dispose();
}

const registry: Registry = new sync.Registry<tf.Tensor>(release) as Registry;

/**
 * Other state that goes with an object (an optimizer's slot variables): `cleanup` runs once the
 * owner is collected, at the same safe points as tensors. It must not reference the owner.
 */
const cleanups: Registry = new sync.Registry<() => void>((cleanup) => cleanup()) as unknown as Registry;
export function releaseWith(owner: object, cleanup: () => void): void {
  (cleanups as unknown as FinalizationRegistry<() => void>).register(owner, cleanup);
}

let releasing = true;
/** For `linger bench` only: switches module-call scopes and tracking off, to time what they cost. */
export function setReleasing(on: boolean): void {
  releasing = on;
}
/** Whether module calls release their intermediates (always, but while the bench times the cost). */
export function isReleasing(): boolean {
  return releasing;
}

/**
 * Called by each engine Tensor's constructor: the TF.js tensor is released once no engine Tensor
 * holding it is reachable. A tf.Variable is released only with the Parameter that owns it (and its
 * views): variables without one (optimizer slots) belong to whoever made them.
 */
export function track(owner: object, raw: tf.Tensor, ownsVariable: boolean): void {
  if (!releasing) return;
  const n = owners.get(raw);
  if (n === undefined && raw instanceof tf.Variable && !ownsVariable) return;
  owners.set(raw, (n ?? 0) + 1);
  registry.register(owner, raw, owner);
}

/** An explicit dispose(): the finalizer of that Tensor has nothing left to do. */
export function untrack(owner: object, raw: tf.Tensor): void {
  if (registry.unregister(owner)) {
    const n = (owners.get(raw) ?? 1) - 1;
    if (n > 0) owners.set(raw, n);
    else owners.delete(raw);
  }
}

// ---- collection at safe points ------------------------------------------------------------------
/**
 * Growth since the last collection that triggers the next: this many bytes or tensors, or half of
 * what was live after it (so a program that keeps much pays for few collections), but never more
 * than MAX_GROWTH_BYTES of garbage (the wasm heap ends at 4 GiB). A full collection takes 5–30 ms;
 * a loop that drops two batch tensors per step pays one every ~500 steps.
 */
const MIN_GROWTH_BYTES = 64 * 2 ** 20;
const MAX_GROWTH_BYTES = 512 * 2 ** 20;
const MIN_GROWTH_TENSORS = 1000;
let bytesAbove = MIN_GROWTH_BYTES;
let tensorsAbove = MIN_GROWTH_TENSORS;
let collections = 0;

function engineState(): { numBytes: number; numTensors: number } {
  return tf.engine().state as unknown as { numBytes: number; numTensors: number };
}
function backendBytes(): number {
  return engineState().numBytes;
}

/**
 * Runs a full collection and releases every dropped tensor now (Python's gc.collect()). Returns how
 * many bytes of tensor storage it released. Without V8's synchronous hooks it only asks for a
 * collection when `gc` is exposed, and the release follows on the next event-loop turn.
 */
export function collectGarbage(): number {
  const before = backendBytes();
  collections++;
  if (sync.gc) {
    sync.gc();
    registry.cleanupSome!();
    cleanups.cleanupSome!();
  } else {
    (globalThis as { gc?: () => void }).gc?.();
  }
  const { numBytes, numTensors } = engineState();
  bytesAbove = numBytes + Math.min(MAX_GROWTH_BYTES, Math.max(MIN_GROWTH_BYTES, numBytes / 2));
  tensorsAbove = numTensors + Math.max(MIN_GROWTH_TENSORS, numTensors / 2);
  return before - numBytes;
}

/**
 * A safe point: releases what V8's own collections have found dropped since (nearly free), and
 * runs a full collection when the backend has grown enough since the last one.
 */
export function maybeCollect(): void {
  if (!sync.gc) return;
  registry.cleanupSome!();
  cleanups.cleanupSome!();
  const s = engineState();
  if (s.numBytes > bytesAbove || s.numTensors > tensorsAbove) collectGarbage();
}

// ---- what is in use -----------------------------------------------------------------------------
export interface MemoryInfo {
  /** TF.js tensors alive (variables included) */
  tensors: number;
  /** bytes of their storage */
  bytes: number;
  /** the wasm backend's heap (it grows, never shrinks; 4 GiB at most), when that backend runs */
  wasmHeapBytes?: number;
  /** the backend in use */
  backend: string;
  /** full collections run by the engine so far (at safe points or collectGarbage()) */
  collections: number;
  /** whether dropped tensors are released inside synchronous loops too (V8's cleanupSome) */
  syncRelease: boolean;
}

/** What the engine holds now: tensors, bytes, the wasm heap (like torch.cuda.memory_allocated). */
export function memory(): MemoryInfo {
  const m = tf.memory();
  const heap = wasmHeap();
  return {
    tensors: m.numTensors,
    bytes: m.numBytes,
    ...(heap ? { wasmHeapBytes: heap.buffer.byteLength } : {}),
    backend: tf.getBackend(),
    collections,
    syncRelease: !!sync.gc,
  };
}

/** A byte count for people: 1.5 MiB. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let v = n,
    u = 0;
  while (Math.abs(v) >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u ? v.toFixed(1) : v} ${units[u]}`;
}

// ---- out of memory ---------------------------------------------------------------------------------
/** The backend could not allocate: the process and every other tensor survive. */
export class OutOfMemoryError extends Error {
  constructor(
    readonly requestedBytes: number,
    readonly inUseBytes: number,
    readonly heapBytes?: number,
  ) {
    super(
      `out of memory: could not allocate ${formatBytes(requestedBytes)} for a tensor ` +
        `(${formatBytes(inUseBytes)} in use by ${tf.memory().numTensors} tensors` +
        `${heapBytes ? `, wasm heap ${formatBytes(heapBytes)} of at most 4 GiB` : ''}); ` +
        'use a smaller batch, or release tensors you keep (dispose(), or drop references to them)',
    );
    this.name = 'OutOfMemoryError';
  }
}

interface WasmModule {
  _malloc(n: number): number;
  _free(p: number): void;
  HEAPU8: Uint8Array;
}

function wasmModule(): WasmModule | undefined {
  if (tf.getBackend() !== 'wasm') return undefined;
  return (tf.backend() as unknown as { wasm?: WasmModule }).wasm;
}
function wasmHeap(): Uint8Array | undefined {
  return wasmModule()?.HEAPU8;
}

const GUARDED = Symbol.for('linger-studio.mallocGuard');

/** The largest heap TF.js's wasm build can grow to (its getHeapMax()), and room kept for its kernels' own buffers. */
const WASM_HEAP_MAX = 4294901760;
const HEAP_RESERVE = 64 * 2 ** 20;

/**
 * The wasm backend allocates every tensor with `_malloc`, which returns 0 when the heap cannot
 * grow; TF.js would then write the tensor over address 0 and the runtime dies later
 * (`memory access out of bounds`). Guarded, the allocation throws OutOfMemoryError before anything
 * is written, and the runtime stays usable. (No collection here: a kernel may be running with
 * TF.js tensors whose engine Tensors are already unreachable.)
 */
export function guardAllocations(): void {
  const w = wasmModule() as (WasmModule & { [GUARDED]?: boolean }) | undefined;
  if (!w || w[GUARDED]) return;
  // emscripten's export is a stub that replaces itself with the raw wasm function on its first
  // call: make that happen now, so that the wrapper below is not replaced
  w._free(w._malloc(8));
  const malloc = w._malloc;
  const fail = (n: number) => new OutOfMemoryError(n, backendBytes(), w.HEAPU8.buffer.byteLength);
  w._malloc = (n: number) => {
    // wasm32 addresses end at 4 GiB (a larger request would wrap around to a small number), and
    // what the tensors hold already plus this must fit below the heap's maximum
    if (n >= 2 ** 32 || backendBytes() + n > WASM_HEAP_MAX - HEAP_RESERVE) throw fail(n);
    const p = malloc(n) >>> 0;
    // near the top of the heap malloc has been seen to return a block the heap could not grow
    // to hold (writing it: `memory access out of bounds`); such a block is never used
    if ((p === 0 && n > 0) || p + n > w.HEAPU8.length) throw fail(n);
    return p;
  };
  w[GUARDED] = true;
}
