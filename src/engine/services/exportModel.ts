// A model file's model at a checkpoint's stage, ready to export: the model file makes the float
// model; the checkpoint's stage (and recorded transforms) decides which linger transforms run
// before its state loads strict. For `linger export` (cli/export.ts) and the engine process's
// export (host/main.ts).
import '../index'; // hands the engine to model files ('linger-studio' in a user's file: modelFile.ts)
import { exampleOf, ModelFile, loadModelFile } from '../modelFile';
import { Module } from '../nn/module';
import { Tensor } from '../tensor';
import { Checkpoint, loadCheckpoint } from '../state/checkpoint';
import { applyCheckpointTransforms } from '../state/replay';

export class ExportError extends Error {}

/** Quantized layers whose output statistics are still empty (running_o = 0): they cannot be exported. */
export function uncalibratedLayers(model: Module): string[] {
  const out: string[] = [];
  for (const [k, t] of Object.entries(model.stateDict())) {
    if (/(^|\.)running_o$/.test(k) && t.dataSync()[0] === 0) out.push(k.slice(0, -'.running_o'.length) || '(root)');
  }
  return out;
}

export interface PreparedModel {
  model: Module;
  inputShape: number[];
  /** the model file's example input (or standard-normal values of inputShape) */
  example: () => Tensor;
  checkpoint?: Checkpoint;
  notes: string[];
}

/**
 * The model of a model file, at the stage of a checkpoint with its state loaded (no checkpoint:
 * the freshly created float model). Errors are clear and name the file they concern.
 */
export async function prepareModel(modelFile: string | ModelFile, checkpointFile?: string): Promise<PreparedModel> {
  const mf = typeof modelFile === 'string' ? await loadModelFile(modelFile) : modelFile;
  const model = mf.createModel();
  const example = () => exampleOf(mf);
  if (!checkpointFile) return { model, inputShape: mf.inputShape, example, notes: [] };
  const ck = await loadCheckpoint(checkpointFile);
  const notes: string[] = [];
  const shape = mf.inputShape;
  const saved = ck.metadata.inputShape;
  if (saved && saved.slice(1).join() !== shape.slice(1).join()) {
    notes.push(`${checkpointFile} was saved with input shape [${saved.join(', ')}]; ${mf.file} says [${shape.join(', ')}]`);
  }
  const replay = applyCheckpointTransforms(model, ck.metadata, example(), checkpointFile);
  notes.push(...replay.notes);
  try {
    model.loadStateDict(ck.stateDict);
  } catch (e) {
    throw new ExportError(`the model of ${mf.file} (after ${replay.transforms.join(' → ') || 'no transforms'}) does not match ${checkpointFile}: ${(e as Error).message}`);
  }
  if (ck.metadata.stage === 'fixed') {
    const empty = uncalibratedLayers(model);
    if (empty.length) {
      throw new ExportError(`${checkpointFile}: the quantizer statistics are empty (running_o = 0) in ${empty.join(', ')}; ` +
        'train in the fixed stage or run linger.calibrate(model, batches) before saving, then export');
    }
  }
  return { model, inputShape: shape, example, checkpoint: ck, notes };
}
