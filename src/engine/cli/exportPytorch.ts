// `linger export-pytorch <model file | checkpoint> [--checkpoint FILE] -o dir/`: an experiment as a
// PyTorch + linger project that trains under torchrun (export/pytorch/project.ts; docs/scale-out.md).
import { commandArgs, usageError } from './args';
import { initBackend } from '../backend/select';
import { ModelFileError } from '../modelFile';
import { CheckpointFormatError } from '../state/safetensors';
import { ExportError } from '../services/exportModel';
import { exportPytorchProject, PytorchExportError } from '../export/pytorch/project';

export const EXPORT_PYTORCH_USAGE = `usage: linger export-pytorch <checkpoint | model file> [--checkpoint FILE] -o <dir> [--data | --no-data] [--limit N] [--force]

Writes a folder that continues the experiment on PyTorch + linger, on one GPU, N GPUs or a
cluster (torchrun): model.py (the model as an nn.Module, the studio's state-dict keys),
weights.safetensors and pt/weights.pt at the checkpoint's stage, recipe.json (the stages'
settings as the checkpoints recorded them), train.py (linger's trace_layers → normalize_layers
→ init under DDP, writing checkpoints the studio opens) and README.md. A checkpoint of a
built-in model (DemoCNN, DemoGRU) needs no model file; a .ts/.js model file exports
createModel() and inputShape, with --checkpoint for its weights.
  --data       write the demo's Fashion-MNIST into data/ (default for the demo's checkpoints)
  --no-data    leave it out (train.py downloads it through torchvision, or fill in load_data())
  --limit N    images per class in data/ (default: all 7,000)
  --force      replace the files of an existing folder
  -o, --output DIR
Exits 1 when the model or the checkpoint cannot be exported (the reason names the layer or op),
2 on a usage error.
`;

export async function runExportPytorch(args: string[], out: (s: string) => void, err: (s: string) => void = out): Promise<number> {
  const parsed = commandArgs<{
    checkpoint?: string;
    output?: string;
    data?: boolean;
    'no-data'?: boolean;
    limit?: string;
    force?: boolean;
  }>(
    'export-pytorch',
    EXPORT_PYTORCH_USAGE,
    args,
    {
      checkpoint: { type: 'string', short: 'c' },
      output: { type: 'string', short: 'o' },
      data: { type: 'boolean' },
      'no-data': { type: 'boolean' },
      limit: { type: 'string' },
      force: { type: 'boolean' },
    },
    out,
    err,
  );
  if (typeof parsed === 'number') return parsed;
  const { values, positionals } = parsed;
  const usage = (m: string) => usageError('export-pytorch', EXPORT_PYTORCH_USAGE, m, err);
  if (positionals.length !== 1) return usage(`expected one checkpoint or model file, got ${positionals.length}`);
  if (!values.output) return usage('the output folder is missing (-o dir/)');
  if (values.data && values['no-data']) return usage('--data and --no-data contradict each other');
  const limit = values.limit === undefined ? undefined : Number(values.limit);
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 1 || limit > 7000))
    return usage(`--limit expects a whole number from 1 to 7000, got '${values.limit}'`);
  const [file] = positionals;
  const isModelFile = /\.(ts|js|mjs|cjs|mts|cts)$/i.test(file);
  if (!isModelFile && values.checkpoint) return usage(`--checkpoint goes with a model file; ${file} is read as the checkpoint`);
  try {
    await initBackend();
    const r = await exportPytorchProject({
      modelFile: isModelFile ? file : undefined,
      checkpoint: isModelFile ? values.checkpoint : file,
      outDir: values.output,
      data: values.data ? true : values['no-data'] ? false : undefined,
      limitPerClass: limit,
      force: values.force,
    });
    for (const n of r.notes) err(`linger export-pytorch: note: ${n}`);
    out(`exported ${r.model} (${r.stage} stage) as a PyTorch project to ${r.dir} (${r.files.length} files)`);
    out(`  run it: cd ${r.dir} && torchrun --standalone --nproc_per_node N train.py   (README.md)`);
    return 0;
  } catch (e) {
    const known =
      e instanceof PytorchExportError || e instanceof ExportError || e instanceof ModelFileError || e instanceof CheckpointFormatError;
    err(`linger export-pytorch: ${known ? '' : `${file}: `}${e instanceof Error ? e.message : String(e)}`);
    if (!known && process.env.LINGER_DEBUG && e instanceof Error) err(e.stack ?? '');
    return 1;
  }
}
