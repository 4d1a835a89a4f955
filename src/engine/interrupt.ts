// Interrupting a running computation at its next step (the notebook's Interrupt, Ctrl-C in
// `linger run`). Training is one long synchronous loop on the thread that runs it, so no message
// can reach it: whoever wants to stop it sets a flag in shared memory, and the engine reads it at
// its safe points (every optimizer step, outermost module call and DataLoader batch).

/** What a computation stopped by an interrupt throws; the state it reached is kept. */
export class InterruptedError extends Error {
  constructor(where = 'the next step') {
    super(`interrupted at ${where}`);
    this.name = 'InterruptedError';
  }
}

let flag: Int32Array | undefined;

/** Shares `buffer` (at least 4 bytes) as this thread's interrupt flag: non-zero means stop. */
export function setInterruptBuffer(buffer: SharedArrayBuffer | undefined): void {
  flag = buffer ? new Int32Array(buffer, 0, 1) : undefined;
}

/** Clears a pending interrupt (a new cell starts). */
export function clearInterrupt(): void {
  if (flag) Atomics.store(flag, 0, 0);
}

/** Requests an interrupt on the thread sharing `buffer` (from any thread). */
export function requestInterrupt(buffer: SharedArrayBuffer): void {
  Atomics.store(new Int32Array(buffer, 0, 1), 0, 1);
}

/** A safe point: throws InterruptedError once when an interrupt was requested (one atomic load otherwise). */
export function checkInterrupt(where?: string): void {
  if (flag && Atomics.load(flag, 0) !== 0) {
    Atomics.store(flag, 0, 0);
    throw new InterruptedError(where);
  }
}
