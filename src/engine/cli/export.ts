// `linger export <model file> [--checkpoint <ckpt>] --dialect qdq|thinker -o out.onnx`: the
// model file makes the float model; a checkpoint's stage (and recorded transforms) decides which
// linger transforms run before its state loads strict; then ONNX export.
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { initBackend } from '../backend/select';
import { exampleOf, ModelFile, ModelFileError, loadModelFile } from '../modelFile';
import { exportOnnx } from '../onnx/export';
import { Module } from '../nn/module';
import { Tensor } from '../tensor';
import { Checkpoint, loadCheckpoint } from '../state/checkpoint';
import { applyCheckpointTransforms } from '../state/replay';
import { CheckpointFormatError } from '../state/safetensors';

export const EXPORT_USAGE = `usage: linger export <model file> [--checkpoint <ckpt>] [--dialect qdq|thinker] -o <out.onnx>

Exports a model to ONNX. The model file is a .ts or .js module exporting createModel() and
inputShape (batch first, NCHW for images) or exampleInput() (a Tensor of any rank or dtype, e.g.
int32 token ids), which the export runs on. With --checkpoint, the transforms that made the checkpoint run
first (float: none; traced: traceLayers, and normalizeLayers when it had normalize layers; fixed:
those and init, with the settings the checkpoint records), then its state loads strict.
  --dialect   qdq (default: standard ONNX ops) or thinker (linger's custom ops; fixed stage)
  -o, --output FILE
Exits 1 on an unusable model file or checkpoint, 2 on a usage error.
`;

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

/** The command: exit 0 on success, 1 on an unusable input, 2 on a usage error. */
export async function runExport(args: string[], out: (s: string) => void, err: (s: string) => void = out): Promise<number> {
  let values: { checkpoint?: string; dialect?: string; output?: string; help?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args, allowPositionals: true, strict: true,
      options: { checkpoint: { type: 'string', short: 'c' }, dialect: { type: 'string' }, output: { type: 'string', short: 'o' }, help: { type: 'boolean', short: 'h' } },
    }));
  } catch (e) {
    err(`linger export: ${(e as Error).message}\n\n${EXPORT_USAGE}`);
    return 2;
  }
  if (values.help) { out(EXPORT_USAGE); return 0; }
  const usage = (m: string) => { err(`linger export: ${m}\n\n${EXPORT_USAGE}`); return 2; };
  if (positionals.length !== 1) return usage(`expected one model file, got ${positionals.length}`);
  if (!values.output) return usage('the output file is missing (-o out.onnx)');
  const dialect = values.dialect ?? 'qdq';
  if (dialect !== 'qdq' && dialect !== 'thinker') return usage(`--dialect must be qdq or thinker, got '${dialect}'`);

  try {
    await initBackend();
    const p = await prepareModel(positionals[0], values.checkpoint);
    for (const n of p.notes) err(`linger export: note: ${n}`);
    p.model.eval();
    const written = await exportOnnx(p.model, p.example(), path.resolve(values.output), { dialect });
    const stage = p.model.stage();
    out(`exported ${path.basename(positionals[0])} (${stage} stage${values.checkpoint ? `, ${values.checkpoint}` : ''}, dialect ${dialect}) to ${written}`);
    return 0;
  } catch (e) {
    // the expected failures carry their own context; anything else comes from running the user's model
    const known = e instanceof ExportError || e instanceof ModelFileError || e instanceof CheckpointFormatError;
    err(`linger export: ${known ? '' : `${positionals[0]}: `}${e instanceof Error ? e.message : String(e)}`);
    if (!known && process.env.LINGER_DEBUG && e instanceof Error) err(e.stack ?? '');
    return 1;
  }
}
