// `linger trace <model file> [--class NAME] [--input-shape 1,1,28,28] [--python PATH] [--json]`: the
// module tree before and after traceLayers, as the Model view shows it, for a PyTorch model file
// (.py: built by the user's own Python, services/pythonModel.ts; docs/python-models.md) or a
// TypeScript/JavaScript model file (createModel() + inputShape).
import { commandArgs, PYTHON_OPTIONS, pythonOptions, usageError } from './args';
import { PythonModelError, tracePythonModel } from '../services/pythonModel';
import { traceModelFile } from '../services/traceModelFile';
import { ModelFileError } from '../modelFile';
import { OnnxImportError } from '../onnx/import';

export const TRACE_USAGE = `usage: linger trace <model.py | model file> [--class NAME] [--input-shape N,C,H,W] [--python PATH] [--json]

Prints the model before and after linger's traceLayers (Conv+BN fusion, ahead-ReLU marks), as
PyTorch prints it. A .py file is imported by your Python (--python, else $LINGER_PYTHON, else
python3) — this runs the file's code — which builds create_model() or the nn.Module class
(--class, or the only one in the file), runs it on example_input() or randn(--input-shape), and
exports it to ONNX for the engine. A .ts/.js model file exports createModel() and inputShape.
Exits 1 when the model cannot be built or traced (the reason and the line in your file), 2 on
a usage error.
`;

export async function runTrace(args: string[], out: (s: string) => void, err: (s: string) => void = out): Promise<number> {
  const parsed = commandArgs<{ class?: string; 'input-shape'?: string; python?: string; json?: boolean }>(
    'trace',
    TRACE_USAGE,
    args,
    { ...PYTHON_OPTIONS, json: { type: 'boolean' } },
    out,
    err,
  );
  if (typeof parsed === 'number') return parsed;
  const { values, positionals } = parsed;
  if (positionals.length !== 1) return usageError('trace', TRACE_USAGE, `expected one model file, got ${positionals.length}`, err);
  const file = positionals[0];
  const py = pythonOptions('trace', TRACE_USAGE, values, file, err);
  if (typeof py === 'number') return py;
  const python = /\.py$/i.test(file);
  try {
    const r = python ? await tracePythonModel(file, py) : await traceModelFile(file);
    if (values.json) out(JSON.stringify(r, null, 2));
    else out(`${r.before.label}:\n${r.before.text}\n\n${r.after.label}:\n${r.after.text}`);
    return 0;
  } catch (e) {
    if (e instanceof PythonModelError || e instanceof ModelFileError || e instanceof OnnxImportError) {
      err(`linger trace: ${e.message}`);
      return 1;
    }
    throw e;
  }
}
