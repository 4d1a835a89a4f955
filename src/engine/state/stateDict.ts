import { Tensor } from '../tensor';

/** The three stages of the linger pipeline (docs/contract.md#stages): raw float, after trace/normalize, after init. */
export type Stage = 'float' | 'traced' | 'fixed';
export const STAGES: readonly Stage[] = ['float', 'traced', 'fixed'];
export function stageRank(s: Stage): number {
  return STAGES.indexOf(s);
}

/**
 * A plain object from dotted key to Tensor, carrying its stage in a non-enumerable `stage`
 * property (read it with stageOfDict, which also infers it for hand-built dicts).
 */
export type StateDict = Record<string, Tensor>;

export function makeStateDict(entries: Iterable<[string, Tensor]>, stage: Stage): StateDict {
  const sd: Record<string, Tensor> = {};
  // defined, not assigned: a key such as '__proto__' (from a file) stays an ordinary entry
  for (const [k, v] of entries) Object.defineProperty(sd, k, { value: v, enumerable: true, writable: true, configurable: true });
  // a tensor keyed 'stage' (a root-level parameter of that name) wins; the stage is then inferred
  if (!Object.prototype.hasOwnProperty.call(sd, 'stage'))
    Object.defineProperty(sd, 'stage', { value: stage, enumerable: false, writable: false });
  return sd as StateDict;
}

/**
 * The stage of a dict: its `stage` property when set (stateDict(), linger.load), otherwise
 * inferred from its keys: quantizer buffers mean fixed; anything else is read as float, which is
 * safe because the float → traced key migration only renames keys that are in float form.
 */
export function stageOfDict(sd: Record<string, Tensor>): Stage {
  const s = (sd as { stage?: unknown }).stage;
  if (typeof s === 'string' && STAGES.includes(s as Stage)) return s as Stage;
  return stageOfKeys(Object.keys(sd));
}

/** The stage state-dict keys imply: quantizer buffers mean fixed; anything else reads as float. */
export function stageOfKeys(keys: Iterable<string>): Stage {
  for (const k of keys) if (/(^|\.)(running_[xwo]|scale_[xwo])$/.test(k)) return 'fixed';
  return 'float';
}
