// PyTorch .pt/.pth checkpoints (docs/pt-checkpoints.md): found by their first bytes, whatever the
// file's name, so checkpoint.ts can read either format through one call.
import * as fs from 'node:fs';
import { CheckpointFormatError, DTYPE_SIZES, TensorEntry } from '../safetensors';
import { fileHead, PtFile, readPt, torchFormatOf } from './read';

export { ptChunks, INT64_KEY, ARCHIVE } from './write';
export { readPt, torchFormatOf, METADATA_ENTRY, STATE_DICT_KEYS } from './read';
export type { PtFile, PtTensor } from './read';

/** A .pt or .pth name: saved in torch.save's layout. */
export const isPtPath = (file: string): boolean => /\.pth?$/i.test(file);

/**
 * The file read as a torch.save checkpoint when its first bytes are one (zip, or a legacy or tar
 * torch.save, refused by name); undefined otherwise (a safetensors file, or one that cannot be
 * opened: the safetensors reader then says why).
 */
export function readTorchCheckpoint(file: string, withData = true): PtFile | undefined {
  let head: Buffer;
  try {
    head = fileHead(file);
  } catch {
    return undefined;
  }
  if (torchFormatOf(head) === undefined) return undefined;
  return readPt(file, withData);
}

/** A safetensors reader's error on a file named .pt/.pth that is no torch.save file either, made clear. */
export function notTorchError(file: string, e: unknown): unknown {
  if (!(e instanceof CheckpointFormatError) || !isPtPath(file)) return e;
  return new CheckpointFormatError(
    file,
    `neither a torch.save checkpoint (a zip archive) nor safetensors (read as safetensors: ${e.problem})`,
  );
}

/** The stage of a dict without metadata: quantizer buffers mean fixed, linger's EmptyBatchNorm key traced. */
export function inferredStage(keys: readonly string[], fromKeys: 'float' | 'traced' | 'fixed'): 'float' | 'traced' | 'fixed' {
  if (fromKeys !== 'float') return fromKeys;
  return keys.some((k) => /(^|\.)_linger_ignore_parameter$/.test(k)) ? 'traced' : 'float';
}

/** A torch.save file's tensors as header entries (offsets within each tensor's own bytes), without its data; undefined when it is no torch.save file. */
export function ptHeader(file: string): { entries: TensorEntry[]; metadata: Record<string, string>; fileSize: number } | undefined {
  const pt = readTorchCheckpoint(file, false);
  if (!pt) return undefined;
  const entries = [...pt.tensors].map(([name, t]) => {
    const end = t.shape.reduce((a, b) => a * b, 1) * DTYPE_SIZES[t.dtype];
    return { name, dtype: t.dtype, shape: t.shape, begin: 0, end };
  });
  return { entries, metadata: pt.metadata, fileSize: fs.statSync(file).size };
}
