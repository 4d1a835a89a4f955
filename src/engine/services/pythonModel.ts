// A user's PyTorch model file in the studio (docs/python-models.md): their own Python runs
// python/trace_model.py, which builds the model and exports it to ONNX keeping BatchNorm and the
// state-dict names; the engine imports that (onnx/import) and traces it as it traces a TypeScript
// model file. Running it executes the user's code: the extension calls this only in a trusted
// workspace; the CLI (`linger trace net.py`) is the user's own command.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initBackend } from '../backend/select';
import { tf } from '../backend/tf';
import type { TraceResult } from '../host/protocol';
import { graphOf, traceLayers, TraceOptions } from '../linger/transforms';
import { importOnnx, OnnxModel } from '../onnx/import';
import { moduleTree } from '../state/checkpoint';
import { randn } from '../tensor';

export interface PythonTraceOptions {
  /** the nn.Module class to build (default: create_model(), else the file's only class) */
  className?: string;
  /** the input shape, batch first (default: the file's example_input()) */
  inputShape?: number[];
  /** the interpreter (default: LINGER_PYTHON, else python3) */
  python?: string;
  /** how long the Python side may take (default 5 minutes) */
  timeoutMs?: number;
  traceOptions?: TraceOptions;
}

export type PythonFailure =
  'no-python' | 'no-torch' | 'import' | 'choose-class' | 'input-shape' | 'build' | 'forward' | 'export' | 'timeout';

/** What went wrong on the Python side, with the frame of the user's file it happened in and a way forward. */
export class PythonModelError extends Error {
  constructor(
    message: string,
    readonly kind: PythonFailure,
    readonly frame?: { file: string; line: number; function: string; text: string },
    readonly classes: string[] = [],
  ) {
    super(message);
    this.name = 'PythonModelError';
  }
}

export interface PythonTraceResult extends TraceResult {
  /** the class that was built */
  className: string;
  /** the nn.Module classes the file defines */
  classes: string[];
  /** PyTorch's own printout of the model before tracing */
  torchText: string;
  python: string;
  torchVersion: string;
  /** the input came from the file's example_input() */
  exampleInput: boolean;
}

/** python/trace_model.py: beside the bundle (dist/python) or in the source tree (src/engine/python). */
export function traceHelperPath(): string {
  const candidates = [path.join(__dirname, 'python', 'trace_model.py'), path.join(__dirname, '..', 'python', 'trace_model.py')];
  const found = candidates.find((c) => fs.existsSync(c));
  if (!found) throw new Error(`the Python helper trace_model.py is missing (looked in ${candidates.join(', ')})`);
  return found;
}

const WAY_FORWARD: Record<PythonFailure, string> = {
  'no-python': 'install Python 3, or set linger.pythonPath (the CLI: --python PATH)',
  'no-torch':
    'install PyTorch for this interpreter (pip install torch, or apt install python3-torch), or choose one that has it (linger.pythonPath, or the Python extension’s interpreter)',
  import: 'fix the error in the file; it must import without side effects that need a terminal',
  'choose-class': 'name the class to build (--class NAME), or define create_model() in the file',
  'input-shape': 'give the input shape (--input-shape 1,1,28,28), or define example_input() in the file',
  build: 'the class is built with no arguments: define create_model() to pass them',
  forward: 'check the input shape against what the model expects',
  export: 'torch.onnx.export could not trace this forward; keep it to tensor operations (no data-dependent Python control flow)',
  timeout:
    'the file took too long to import, build or export; a long training loop at its top level should go under `if __name__ == "__main__":`',
};

function run(
  python: string,
  args: string[],
  timeoutMs: number,
): Promise<{ code: number | null; stderr: string; error?: { code?: string | number | null; killed?: boolean } }> {
  return new Promise((resolve) => {
    execFile(
      python,
      args,
      { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } },
      (error, _out, stderr) =>
        resolve({ code: error ? ((error as { code?: number }).code ?? null) : 0, stderr: String(stderr), error: error ?? undefined }),
    );
  });
}

/** Builds the user's PyTorch model in their Python, imports its ONNX export, and traces it. */
export async function tracePythonModel(file: string, opts: PythonTraceOptions = {}): Promise<PythonTraceResult> {
  const t0 = performance.now();
  const abs = path.resolve(file);
  if (!fs.existsSync(abs)) throw new PythonModelError(`${file}: no such file`, 'import');
  if (opts.inputShape && (!opts.inputShape.length || opts.inputShape.some((d) => !Number.isInteger(d) || d <= 0)))
    throw new PythonModelError(`the input shape must be positive whole numbers, got [${opts.inputShape.join(', ')}]`, 'input-shape');
  const python = opts.python ?? process.env.LINGER_PYTHON ?? 'python3';
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'linger-python-'));
  try {
    const onnx = path.join(dir, 'model.onnx');
    const infoFile = path.join(dir, 'info.json');
    const args = [traceHelperPath(), abs, '-o', onnx, '--info', infoFile];
    if (opts.className) args.push('--class', opts.className);
    if (opts.inputShape) args.push('--input-shape', opts.inputShape.join(','));
    const r = await run(python, args, opts.timeoutMs ?? 300_000);
    if (r.error?.code === 'ENOENT')
      throw new PythonModelError(`no Python interpreter '${python}' — ${WAY_FORWARD['no-python']}`, 'no-python');
    if (r.error?.killed)
      throw new PythonModelError(
        `${path.basename(abs)}: Python did not finish within ${((opts.timeoutMs ?? 300_000) / 1000).toFixed(0)} s — ${WAY_FORWARD.timeout}`,
        'timeout',
      );
    let info: {
      ok: boolean;
      kind?: PythonFailure;
      error?: string;
      frame?: { file: string; line: number; function: string; text: string };
      classes?: string[];
      className?: string;
      inputShape?: number[];
      exampleInput?: boolean;
      text?: string;
      definitions?: Record<string, number>;
      torch?: string;
    };
    try {
      info = JSON.parse(fs.readFileSync(infoFile, 'utf8'));
    } catch {
      const tail = r.stderr.trim().split('\n').slice(-3).join('\n');
      throw new PythonModelError(
        `${path.basename(abs)}: ${python} ended (exit ${r.code}) without a result${tail ? `:\n${tail}` : ''}`,
        'import',
      );
    }
    if (!info.ok) {
      const kind = info.kind ?? 'import';
      const at = info.frame
        ? ` (at ${path.basename(info.frame.file)}:${info.frame.line} in ${info.frame.function}${info.frame.text ? `: ${info.frame.text}` : ''})`
        : '';
      throw new PythonModelError(
        `${path.basename(abs)}: ${info.error}${at} — ${WAY_FORWARD[kind] ?? ''}`,
        kind,
        info.frame,
        info.classes ?? [],
      );
    }
    await initBackend();
    const model = (await importOnnx(onnx, { inputShape: info.inputShape })) as OnnxModel;
    model.displayName = info.className;
    const inputShape = [...model.inputShape];
    const before = { label: 'Before traceLayers', stage: model.stage(), modules: moduleTree(model), text: String(model) };
    tf.tidy(() => {
      traceLayers(model, model, randn(inputShape), opts.traceOptions ?? {});
    });
    const after = { label: 'After traceLayers', stage: model.stage(), modules: moduleTree(model), text: String(model) };
    // 1-based lines from Python → the 0-based lines the views use
    const definitions = Object.fromEntries(Object.entries(info.definitions ?? {}).map(([k, v]) => [k, v - 1]));
    return {
      file: abs,
      inputShape,
      before,
      after,
      definitions,
      graph: graphOf(model),
      ms: performance.now() - t0,
      className: info.className!,
      classes: info.classes ?? [],
      torchText: info.text ?? '',
      python,
      torchVersion: info.torch ?? '',
      exampleInput: Boolean(info.exampleInput),
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
