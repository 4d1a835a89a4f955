import { Tensor } from '../tensor';

/** The three stages of the linger pipeline (SPEC §6): raw float, after trace/normalize, after init. */
export type Stage = 'float' | 'traced' | 'fixed';
export const STAGES: readonly Stage[] = ['float', 'traced', 'fixed'];
export function stageRank(s: Stage): number { return STAGES.indexOf(s); }

/**
 * A plain object from dotted key to Tensor, carrying its stage in a non-enumerable `stage`
 * property (read it with stageOfDict, which also infers it for hand-built dicts).
 */
export type StateDict = Record<string, Tensor>;

export function makeStateDict(entries: Iterable<[string, Tensor]>, stage: Stage): StateDict {
  const sd: Record<string, Tensor> = {};
  for (const [k, v] of entries) sd[k] = v;
  Object.defineProperty(sd, 'stage', { value: stage, enumerable: false, writable: false });
  return sd as StateDict;
}

/**
 * The stage of a dict: its `stage` property when set (stateDict(), linger.load), otherwise
 * inferred from its keys: quantizer buffers mean fixed; anything else is read as float, which is
 * safe because the float → traced key migration only renames keys that are in float form.
 */
export function stageOfDict(sd: Record<string, Tensor>): Stage {
  const s = (sd as { stage?: Stage }).stage;
  if (s && STAGES.includes(s)) return s;
  if (Object.keys(sd).some((k) => /(^|\.)(running_[xwo]|scale_[xwo])$/.test(k))) return 'fixed';
  return 'float';
}
