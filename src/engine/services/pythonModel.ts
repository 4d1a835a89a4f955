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
import { importOnnxBuffer, OnnxModel } from '../onnx/import';
import type { ModelFile } from '../modelFile';
import type { Module } from '../nn/module';
import { moduleTree } from '../state/checkpoint';
import { randn, Tensor } from '../tensor';

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

interface PythonInfo {
  ok: boolean;
  kind?: PythonFailure;
  error?: string;
  frame?: { file: string; line: number; function: string; text: string };
  classes?: string[];
  className?: string;
  inputShape?: number[];
  inputDtype?: string;
  exampleInput?: boolean;
  text?: string;
  definitions?: Record<string, number>;
  torch?: string;
}

/** What the user's Python made of their file: the model's ONNX export and what trace_model.py reported. */
export interface PythonBuild {
  file: string;
  python: string;
  onnx: Uint8Array;
  info: PythonInfo & { className: string; inputShape: number[] };
}

/**
 * Runs the user's Python on trace_model.py: it imports the file, builds the model and exports it
 * to ONNX (PRESERVE mode: BatchNorm and the state-dict names kept). Every failure is a
 * PythonModelError with its kind, the user's frame and a way forward.
 */
export async function buildPythonModel(file: string, opts: PythonTraceOptions = {}): Promise<PythonBuild> {
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
    let info: PythonInfo;
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
    // not cached: the file may import others the user has just changed
    return {
      file: abs,
      python,
      onnx: fs.readFileSync(onnx),
      info: { ...info, className: info.className ?? '', inputShape: info.inputShape ?? [] },
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** 1-based lines from Python → the 0-based lines the views use. */
const zeroBased = (d: Record<string, number> = {}) => Object.fromEntries(Object.entries(d).map(([k, v]) => [k, v - 1]));

/** A fresh engine model of a build (the ONNX import of the user's class, named after it). */
function modelOfBuild(b: PythonBuild): OnnxModel {
  const model = importOnnxBuffer(b.onnx, { inputShape: b.info.inputShape, file: b.file });
  model.displayName = b.info.className;
  return model;
}

/**
 * A PyTorch model file as a model file of ours (createModel, inputShape): what export, a
 * checkpoint's tree and the notebook's linger.importPythonModel build a `.pt`'s model from.
 */
export async function pythonModelFile(
  file: string,
  opts: PythonTraceOptions = {},
): Promise<ModelFile & { className: string; definitions: Record<string, number> }> {
  const b = await buildPythonModel(file, opts);
  await initBackend();
  const ints = /^(u?int|long|bool)/.test(b.info.inputDtype ?? '');
  return {
    createModel: () => modelOfBuild(b),
    inputShape: [...b.info.inputShape],
    // an index input (Embedding) is exported with zeros: any valid index does
    ...(ints ? { example: () => new Tensor(tf.zeros(b.info.inputShape, 'int32')) } : {}),
    file: b.file,
    className: b.info.className,
    definitions: zeroBased(b.info.definitions),
  };
}

/** linger.importPythonModel: the user's PyTorch class as an engine model (float stage), in a notebook or a script. */
export async function importPythonModel(file: string, opts: PythonTraceOptions = {}): Promise<Module> {
  const b = await buildPythonModel(file, opts);
  await initBackend();
  return modelOfBuild(b);
}

/** Builds the user's PyTorch model in their Python, imports its ONNX export, and traces it. */
export async function tracePythonModel(file: string, opts: PythonTraceOptions = {}): Promise<PythonTraceResult> {
  const t0 = performance.now();
  const b = await buildPythonModel(file, opts);
  const { info, python, file: abs } = b;
  await initBackend();
  const model = modelOfBuild(b);
  const inputShape = [...model.inputShape];
  const before = { label: 'Before traceLayers', stage: model.stage(), modules: moduleTree(model), text: String(model) };
  tf.tidy(() => {
    traceLayers(model, model, randn(inputShape), opts.traceOptions ?? {});
  });
  const after = { label: 'After traceLayers', stage: model.stage(), modules: moduleTree(model), text: String(model) };
  const definitions = zeroBased(info.definitions);
  return {
    file: abs,
    inputShape,
    before,
    after,
    definitions,
    graph: graphOf(model),
    ms: performance.now() - t0,
    className: info.className,
    classes: info.classes ?? [],
    torchText: info.text ?? '',
    python,
    torchVersion: info.torch ?? '',
    exampleInput: Boolean(info.exampleInput),
  };
}
