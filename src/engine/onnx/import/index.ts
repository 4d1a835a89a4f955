// ONNX import (docs/onnx.md, "Import from PyTorch"): a float model exported by PyTorch
// (torch.onnx.export, opset 11–17; both the default eval export, which folds BN into Conv and
// anonymises weights, and the PRESERVE export, which keeps BN and state-dict names) becomes an
// nn.Module whose children are real engine layers named after PyTorch's module paths. The file is
// read (read.ts), planned (plan.ts) and built (build.ts); what each ONNX op is and does is its own
// file in ops/, registered with registry.ts.
import * as path from 'node:path';
import { Module } from '../../nn/module';
import { setRecipe } from '../../parallel/recipe';
import { NotARegularFileError, readRegularFile } from '../../state/files';
import { buildModel } from './build';
import { OnnxModel } from './model';
import './ops';
import { planGraph } from './plan';
import { ImportOptions, readGraph } from './read';

export { OnnxModel, OnnxScope } from './model';
export { scopeOfNodeName } from './read';
export type { ImportOptions } from './read';

/** A model file importOnnx cannot read: names the file and the problem (op and node where there is one). */
export class OnnxImportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OnnxImportError';
  }
}

/** linger.importOnnx: reads a float ONNX model (as PyTorch exports it) into an nn.Module. */
export async function importOnnx(file: string, opts: ImportOptions = {}): Promise<Module> {
  let bytes: Buffer;
  try {
    // lstat first, opened non-blocking: a FIFO or a device never blocks the import (state/files.ts)
    bytes = readRegularFile(file, 'model');
  } catch (e) {
    throw new OnnxImportError(`${file}: cannot read the file (${e instanceof NotARegularFileError ? e.problem : (e as Error).message})`);
  }
  const model = importOnnxBuffer(bytes, { ...opts, file });
  setRecipe(model, { kind: 'onnx', file: path.resolve(file), ...(opts.inputShape ? { inputShape: opts.inputShape } : {}) });
  return model;
}

/** importOnnx on bytes already in memory (`file` only names them in errors). */
export function importOnnxBuffer(bytes: Uint8Array, opts: ImportOptions & { file?: string } = {}): OnnxModel {
  const file = opts.file ?? '<buffer>';
  try {
    const g = readGraph(bytes, file, opts);
    return buildModel(g, planGraph(g));
  } catch (e) {
    if (e instanceof OnnxImportError) throw e;
    const msg = e instanceof Error ? e.message : String(e);
    throw new OnnxImportError(`${file}: ${msg}`);
  }
}
