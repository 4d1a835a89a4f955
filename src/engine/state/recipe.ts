// A stage's recipe (linger.recipe in a checkpoint's metadata, docs/contract.md#checkpoints): how the
// stage was trained, as flat values, checked on save and on read.
const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);

/**
 * A stage's recipe (linger.recipe): what the training of this checkpoint used, flat values only —
 * read by the experiment view (a short schedule explains a surprising number) and by an export to
 * PyTorch. Keys are free; the demo writes dataset, trainImages, epochs, lr, batchSize, momentum,
 * seed, bits, and the trace/normalize options of the stage (docs/contract.md#checkpoints).
 */
export type Recipe = Record<string, string | number | boolean | null>;

/** Why a value is not a recipe (an object of at most 64 flat values: strings, finite numbers, booleans, null). */
export function recipeProblem(v: unknown): string | undefined {
  if (!isObject(v)) return 'is not an object of values';
  const entries = Object.entries(v);
  if (entries.length > 64) return `has ${entries.length} entries (at most 64)`;
  for (const [k, x] of entries) {
    if (k.length > 64) return `has a key longer than 64 characters ('${k.slice(0, 40)}…')`;
    const ok =
      x === null || typeof x === 'boolean' || (typeof x === 'number' && Number.isFinite(x)) || (typeof x === 'string' && x.length <= 256);
    if (!ok)
      return `'${k.slice(0, 40)}' is ${typeof x === 'string' ? 'a string over 256 characters' : `not a flat value (${typeof x === 'number' ? String(x) : typeof x})`}`;
  }
  return undefined;
}
