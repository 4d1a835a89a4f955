// What a checkpoint's stored module tree may hold, entry by entry (docs/contract.md): a field the
// writer never makes, or a value of the wrong kind, is refused with what is wrong.
const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);
const isClamp = (v: unknown) => v === null || (typeof v === 'number' && Number.isFinite(v));
const isBits = (v: unknown) => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 32;

const TREE_FIELDS = new Set(['path', 'type', 'repr', 'parameters', 'aheadRelu', 'normalize', 'bits', 'scales']);
const CLAMP_FIELDS = new Set(['data', 'weight', 'bias']);
const BITS_FIELDS = new Set(['data', 'parameter', 'out']);
const SCALE_FIELDS = new Set(['x', 'w', 'o']);
/** a scale as the tree records one: a positive power of two */
const isScale = (v: unknown) => typeof v === 'number' && v > 0 && Number.isFinite(v) && Number.isInteger(Math.log2(v));
const unknownField = (o: Record<string, unknown>, known: ReadonlySet<string>) => Object.keys(o).find((k) => !known.has(k));

/** What is wrong with one module-tree entry, if anything. */
export function treeEntryProblem(e: unknown): string | undefined {
  if (!isObject(e)) return 'not an object';
  if (typeof e.path !== 'string' || typeof e.type !== 'string') return 'path and type must be strings';
  // a field the writer never makes (one flipped bit: `oormalize`) would drop what it should have held: refuse it
  const odd = unknownField(e, TREE_FIELDS);
  if (odd !== undefined) return `unknown field '${odd.slice(0, 40)}' (known: ${[...TREE_FIELDS].join(', ')})`;
  if (isObject(e.normalize) && unknownField(e.normalize, CLAMP_FIELDS) !== undefined)
    return `normalize has an unknown field '${unknownField(e.normalize, CLAMP_FIELDS)!.slice(0, 40)}'`;
  if (isObject(e.bits) && unknownField(e.bits, BITS_FIELDS) !== undefined)
    return `bits has an unknown field '${unknownField(e.bits, BITS_FIELDS)!.slice(0, 40)}'`;
  if (e.repr !== undefined && typeof e.repr !== 'string') return 'repr must be a string';
  if (e.parameters !== undefined && !(Number.isSafeInteger(e.parameters) && (e.parameters as number) >= 0))
    return 'parameters must be a whole number';
  if (e.aheadRelu !== undefined && typeof e.aheadRelu !== 'boolean') return 'aheadRelu must be a boolean';
  if (
    e.normalize !== undefined &&
    !(isObject(e.normalize) && isClamp(e.normalize.data) && isClamp(e.normalize.weight) && isClamp(e.normalize.bias))
  ) {
    return 'normalize must be { data, weight, bias } numbers or null';
  }
  if (e.bits !== undefined && !(isObject(e.bits) && isBits(e.bits.data) && isBits(e.bits.parameter) && isBits(e.bits.out))) {
    return 'bits must be { data, parameter, out } whole numbers';
  }
  if (
    e.scales !== undefined &&
    !(isObject(e.scales) && unknownField(e.scales, SCALE_FIELDS) === undefined && Object.values(e.scales).every(isScale))
  ) {
    return 'scales must be { x, w, o } powers of two';
  }
  return undefined;
}
