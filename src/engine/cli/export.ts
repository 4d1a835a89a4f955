// `linger export [<model file>] [--checkpoint <ckpt>] --dialect qdq|thinker [--batch N] -o out.onnx`: the
// arguments and the messages of the command; preparing the model is services/exportModel.ts's
// (the engine process exports through it too), then ONNX export.
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { initBackend } from '../backend/select';
import { ModelFileError } from '../modelFile';
import { exportOnnx, OnnxExportError } from '../onnx/export';
import { randn } from '../tensor';
import { CheckpointFormatError } from '../state/safetensors';
import { ExportError, prepareModel } from '../services/exportModel';
import { PythonModelError } from '../services/pythonModel';
import { OnnxImportError } from '../onnx/import';
import { PYTHON_OPTIONS, pythonOptions } from './args';

export const EXPORT_USAGE = `usage: linger export [<model file>] [--checkpoint <ckpt>] [--dialect qdq|thinker] [--batch N] -o <out.onnx>
                     [--class NAME] [--input-shape N,C,H,W] [--python PATH]

Exports a model to ONNX. The model file is a .ts or .js module exporting createModel() and
inputShape (batch first, NCHW for images) or exampleInput() (a Tensor of any rank or dtype, e.g.
int32 token ids), which the export runs on; or a PyTorch model file (.py), built by your Python
(--python, else $LINGER_PYTHON, else python3; this runs the file) from create_model() or --class,
on example_input() or --input-shape: how a .pt saved by the real linger is exported. With --checkpoint, the transforms that made the checkpoint run
first (float: none; traced: traceLayers, and normalizeLayers when it had normalize layers; fixed:
those and init, with the settings the checkpoint records), then its state loads strict. A
checkpoint of a built-in model (DemoCNN, DemoGRU: what linger demo saves) needs no model file.
  --dialect   qdq (default: standard ONNX ops) or thinker (linger's custom ops; fixed stage;
              static shapes, as tpacker v1.1.0 needs: the batch is the example's or --batch's)
  --batch N   the exported batch size (default: the example input's dim 0)
  -o, --output FILE
Exits 1 on an unusable model file or checkpoint, 2 on a usage error.
`;

/** The command: exit 0 on success, 1 on an unusable input, 2 on a usage error. */
export async function runExport(args: string[], out: (s: string) => void, err: (s: string) => void = out): Promise<number> {
  let values: {
    checkpoint?: string;
    dialect?: string;
    output?: string;
    batch?: string;
    help?: boolean;
    class?: string;
    'input-shape'?: string;
    python?: string;
  };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        checkpoint: { type: 'string', short: 'c' },
        dialect: { type: 'string' },
        output: { type: 'string', short: 'o' },
        batch: { type: 'string' },
        ...PYTHON_OPTIONS,
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (e) {
    err(`linger export: ${(e as Error).message}\n\n${EXPORT_USAGE}`);
    return 2;
  }
  if (values.help) {
    out(EXPORT_USAGE);
    return 0;
  }
  const usage = (m: string) => {
    err(`linger export: ${m}\n\n${EXPORT_USAGE}`);
    return 2;
  };
  if (positionals.length > 1 || (positionals.length === 0 && !values.checkpoint)) {
    return usage(`expected one model file (or none with a --checkpoint of a built-in model), got ${positionals.length}`);
  }
  const batch = values.batch === undefined ? undefined : Number(values.batch);
  if (batch !== undefined && (!Number.isInteger(batch) || batch < 1))
    return usage(`--batch expects a positive integer, got '${values.batch}'`);
  if (!values.output) return usage('the output file is missing (-o out.onnx)');
  const py = pythonOptions('export', EXPORT_USAGE, values, positionals[0], err);
  if (typeof py === 'number') return py;
  const dialect = values.dialect ?? 'qdq';
  if (dialect !== 'qdq' && dialect !== 'thinker') return usage(`--dialect must be qdq or thinker, got '${dialect}'`);

  try {
    await initBackend();
    const p = await prepareModel(positionals[0], values.checkpoint, py);
    for (const n of p.notes) err(`linger export: note: ${n}`);
    p.model.eval();
    let example = p.example();
    if (batch !== undefined && example.shape[0] !== batch) {
      if (example.dtype !== 'float32')
        throw new ExportError(
          `--batch: the example input holds ${example.dtype} values (indices); export its own batch or change exampleInput()`,
        );
      example = randn([batch, ...example.shape.slice(1)]);
    }
    const written = await exportOnnx(p.model, example, path.resolve(values.output), {
      dialect,
      onWarning: (w) => err(`linger export: warning: ${w}`),
    });
    const stage = p.model.stage();
    const what = positionals[0] ? path.basename(positionals[0]) : p.model.typeName();
    out(
      `exported ${what} (${stage} stage${values.checkpoint ? `, ${values.checkpoint}` : ''}, dialect ${dialect}, batch ${example.shape[0]}) to ${written}`,
    );
    return 0;
  } catch (e) {
    // the expected failures carry their own context; anything else comes from running the user's model
    const known =
      e instanceof ExportError ||
      e instanceof ModelFileError ||
      e instanceof CheckpointFormatError ||
      e instanceof OnnxExportError ||
      e instanceof PythonModelError ||
      e instanceof OnnxImportError;
    err(`linger export: ${known ? '' : `${positionals[0] ?? values.checkpoint}: `}${e instanceof Error ? e.message : String(e)}`);
    if (!known && process.env.LINGER_DEBUG && e instanceof Error) err(e.stack ?? '');
    return 1;
  }
}
