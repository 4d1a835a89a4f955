// A model file's model at a checkpoint's stage, ready to export: the model file makes the float
// model; the checkpoint's stage (and recorded transforms) decides which linger transforms run
// before its state loads strict. For `linger export` (cli/export.ts) and the engine process's
// export (host/main.ts).
import * as path from 'node:path';
import '../index'; // hands the engine to model files ('linger-studio' in a user's file: modelFile.ts)
import { exampleOf, ModelFile, loadModelFile } from '../modelFile';
import { Module } from '../nn/module';
import { Tensor } from '../tensor';
import { Checkpoint, loadCheckpoint, readCheckpointInfo } from '../state/checkpoint';
import { applyCheckpointTransforms } from '../state/replay';
import { DEMO_INPUT_SHAPE, DemoCNN } from '../train/demoCnn';
import { DemoGRU } from '../train/demoGru';
import { pythonModelFile, PythonTraceOptions } from './pythonModel';

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
  /** the model file the model came from */
  file: string;
  /** a PyTorch model file's module definitions (0-based lines), from its Python */
  definitions?: Record<string, number>;
}

/** The engine's built-in models, by the class name a checkpoint records: exported with no model file. */
export const BUILTIN_MODELS: Record<string, () => Module> = { DemoCNN: () => new DemoCNN(), DemoGRU: () => new DemoGRU() };

/** The model file of a built-in model (`linger demo`'s checkpoints record 'DemoCNN' or 'DemoGRU'). */
export function builtinModelFile(name: string): ModelFile | undefined {
  const make = BUILTIN_MODELS[name];
  return make ? { createModel: make, inputShape: [...DEMO_INPUT_SHAPE], file: `(built-in ${name})` } : undefined;
}

/**
 * The model of a model file, at the stage of a checkpoint with its state loaded (no checkpoint:
 * the freshly created float model). Without a model file, the checkpoint's model must be a
 * built-in one (DemoCNN, DemoGRU). A PyTorch model file (.py) is built by the user's Python
 * (services/pythonModel.ts; `python` says which class, shape and interpreter): a `.pt` trained
 * with real linger gets its model this way (docs/python-models.md). Errors are clear and name the
 * file they concern.
 */
export async function prepareModel(
  modelFile: string | ModelFile | undefined,
  checkpointFile?: string,
  python: PythonTraceOptions = {},
): Promise<PreparedModel> {
  let mf: ModelFile & { definitions?: Record<string, number> };
  if (modelFile === undefined) {
    if (!checkpointFile) throw new ExportError('give a model file, or a checkpoint of a built-in model (DemoCNN, DemoGRU)');
    const name = readCheckpointInfo(checkpointFile).metadata.model;
    const builtin = builtinModelFile(name);
    if (!builtin) {
      throw new ExportError(
        `${path.basename(checkpointFile)} was saved from ${name ? `a ${name}` : 'a model'}: choose the model file that builds it ` +
          `(built-in models need none: ${Object.keys(BUILTIN_MODELS).join(', ')})`,
      );
    }
    mf = builtin;
  } else {
    mf =
      typeof modelFile !== 'string'
        ? modelFile
        : /\.py$/i.test(modelFile)
          ? await pythonModelFile(modelFile, python)
          : await loadModelFile(modelFile);
  }
  const model = mf.createModel();
  const example = () => exampleOf(mf);
  const source = { file: mf.file, ...(mf.definitions ? { definitions: mf.definitions } : {}) };
  if (!checkpointFile) return { model, inputShape: mf.inputShape, example, notes: [], ...source };
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
    throw new ExportError(
      `the model of ${mf.file} (after ${replay.transforms.join(' → ') || 'no transforms'}) does not match ${checkpointFile}: ${(e as Error).message}`,
    );
  }
  if (ck.metadata.stage === 'fixed') {
    const empty = uncalibratedLayers(model);
    if (empty.length) {
      throw new ExportError(
        `${checkpointFile}: the quantizer statistics are empty (running_o = 0) in ${empty.join(', ')}; ` +
          'train in the fixed stage or run linger.calibrate(model, batches) before saving, then export',
      );
    }
  }
  return { model, inputShape: shape, example, checkpoint: ck, notes, ...source };
}
