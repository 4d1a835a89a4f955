// The chip's rules on a model file, for the views (docs/chip-rules.md, "In VS Code"): the model a
// TypeScript/JavaScript or PyTorch model file builds (at a checkpoint's stage when one is given)
// checked by linger.checkChip, with the line that defines each layer, so the extension can put a
// finding on the layer's row in the Model view and at its definition in the file.
import { checkChip, type ChipReport, type CheckChipOptions } from '../chip';
import { moduleTree } from '../state/checkpoint';
import { prepareModel } from './exportModel';
import type { PythonTraceOptions } from './pythonModel';
import { definitionLines } from './traceModelFile';

export interface ModelChipReport {
  /** the model file checked (absolute) */
  file: string;
  report: ChipReport;
  /** where each module is defined in the file: path → 0-based line */
  definitions: Record<string, number>;
}

export async function checkModelFileChip(
  modelFile: string,
  opts: CheckChipOptions & { checkpoint?: string; python?: PythonTraceOptions } = {},
): Promise<ModelChipReport> {
  const p = await prepareModel(modelFile, opts.checkpoint, opts.python ?? {});
  const report = checkChip(p.model, p.example(), { platform: opts.platform });
  const paths = moduleTree(p.model)
    .map((e) => e.path)
    .filter(Boolean);
  return { file: p.file, report, definitions: p.definitions ?? definitionLines(p.file, paths) };
}
