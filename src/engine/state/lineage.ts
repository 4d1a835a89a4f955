// A checkpoint's parent, verified by its content hash (linger.parent_sha256, recorded on save;
// docs/contract.md#checkpoints): another run that rewrote the parent is detected.
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { readRegularFile } from './files';

/** METADATA_KEYS.parentHash (state/checkpoint.ts) */
const PARENT_HASH = 'linger.parent_sha256';

/** The sha256 of a file's bytes, or undefined when it cannot be read as a regular file. */
export function fileHash(file: string): string | undefined {
  try {
    return createHash('sha256').update(readRegularFile(file, 'checkpoint')).digest('hex');
  } catch {
    return undefined;
  }
}

/**
 * Whether a checkpoint's parent is the file it was made from: the parent's content hash, recorded
 * when the child was saved, against the parent file now (a path is resolved from the current
 * folder, then from the child's). Undefined when it matches or nothing was recorded.
 */
export function parentProblem(file: string, metadata: { parent?: string; raw: Record<string, string> }): string | undefined {
  const parent = metadata.parent;
  const want = metadata.raw[PARENT_HASH];
  if (!parent || !want) return undefined;
  const candidates = [parent, path.join(path.dirname(file), path.basename(parent))];
  const found = candidates.map((c) => [c, fileHash(c)] as const).find(([, h]) => h !== undefined);
  if (!found) return `its parent ${parent} cannot be read`;
  if (found[1] !== want)
    return `its parent ${found[0]} is not the file it was made from (its sha256 changed: another run wrote it, or it was edited)`;
  return undefined;
}
