// The engine process: the extension forks it (child_process.fork) and speaks JSON-RPC to it over
// the IPC channel (protocol.ts), so that TensorFlow.js, tracing, checkpoint reads and model files
// never run on the extension host's thread. It loads its backend lazily, on the first request
// that needs one; a crash ends only this process, and the extension starts a new one.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CancellationToken, createMessageConnection, IPCMessageReader, IPCMessageWriter, ResponseError } from 'vscode-jsonrpc/node';
import '../index'; // hands the engine to model files ('linger-studio' in a user's file: modelFile.ts)
import { initBackend, backendName } from '../backend/select';
import { memory } from '../memory';
import { inspectCheckpoint, formatInspect } from '../services/inspect';
import { moduleTree } from '../state/checkpoint';
import { checkpointSummary } from '../services/checkpointSummary';
import { traceModelFile } from '../services/traceModelFile';
import { PythonModelError, tracePythonModel } from '../services/pythonModel';
import { checkpointModel } from '../services/checkpointModel';
import { checkModelFileChip } from '../services/chipOfModel';
import { exportPytorchProject, PytorchExportError } from '../export/pytorch/project';
import { experimentOfFiles, renderExperimentCharts } from '../services/experiment';
import { CheckpointFormatError } from '../state/safetensors';

export { checkpointSummary, traceModelFile };
import { ModelFileError } from '../modelFile';
import { graphOf, traceLayers, TraceOptions } from '../linger/transforms';
import { randn } from '../tensor';
import { tf } from '../backend/tf';
import { ExportError, prepareModel } from '../services/exportModel';
import { exportOnnx, OnnxExportError } from '../onnx/export';
import { importOnnx, OnnxImportError, OnnxModel } from '../onnx/import';
import { verifyOnnx } from '../onnx/verify';
import { compareCheckpoints } from '../state/compare';
import {
  CheckChipRequest,
  ExportPytorchRequest,
  CheckpointModelRequest,
  CheckpointSummaryRequest,
  CompareRequest,
  DemoParams,
  ExperimentRequest,
  TracePythonModelRequest,
  DemoSummary,
  ExportOnnxRequest,
  ExportParams,
  ExportResult,
  Info,
  ImportOnnxRequest,
  ImportResult,
  InspectRequest,
  LogNotification,
  ProgressNotification,
  RunDemoRequest,
  TraceModelFileRequest,
} from './protocol';
import { JobCancelledError, JobHooks, runDemoJob } from './jobs';

/** Errors a user can act on travel as their message alone; anything else keeps its stack for the log. */
function asResponseError(e: unknown): ResponseError<{ stack?: string }> {
  const expected =
    e instanceof CheckpointFormatError ||
    e instanceof ModelFileError ||
    e instanceof ExportError ||
    e instanceof OnnxExportError ||
    e instanceof JobCancelledError ||
    e instanceof OnnxImportError ||
    e instanceof PythonModelError ||
    e instanceof PytorchExportError;
  const err = e instanceof Error ? e : new Error(String(e));
  return new ResponseError(expected ? 1 : -32603, err.message, expected ? undefined : { stack: err.stack });
}

function handled<P, R>(fn: (p: P, token?: CancellationToken) => Promise<R> | R): (p: P, token: CancellationToken) => Promise<R> {
  return async (p: P, token: CancellationToken) => {
    try {
      return await fn(p, token);
    } catch (e) {
      throw asResponseError(e);
    }
  };
}

/** Imports an ONNX model (a PyTorch export) and, when asked, traces it as a model file would be. */
export async function importOnnxModel(file: string, trace = false, traceOptions: TraceOptions = {}): Promise<ImportResult> {
  await initBackend();
  const t0 = performance.now();
  const model = (await importOnnx(file)) as OnnxModel;
  const inputShape = [...model.inputShape];
  const before = {
    label: trace ? 'Before traceLayers' : path.basename(file),
    stage: model.stage(),
    modules: moduleTree(model),
    text: String(model),
  };
  if (!trace) return { file, inputShape, before, ms: performance.now() - t0 };
  tf.tidy(() => {
    traceLayers(model, model, randn(inputShape), traceOptions);
  });
  const after = { label: 'After traceLayers', stage: model.stage(), modules: moduleTree(model), text: String(model) };
  return { file, inputShape, before, after, graph: graphOf(model), ms: performance.now() - t0 };
}

/** Exports a checkpoint (or a model file's float model) to ONNX and checks it against the engine. */
export async function exportAndVerify(p: ExportParams): Promise<ExportResult> {
  await initBackend();
  const t0 = performance.now();
  const source = p.modelFile;
  if (!source && !p.checkpoint) throw new ExportError('nothing to export: give a checkpoint or a model file');
  // no model file: a checkpoint of a built-in model (DemoCNN, DemoGRU), services/exportModel.ts
  const prepared = await prepareModel(source, p.checkpoint, p.python);
  const model = prepared.model;
  const stage = model.stage();
  const base = (p.checkpoint ?? (typeof source === 'string' ? source : 'model')).replace(/\.(safetensors|pth?|py|[cm]?[tj]s)$/, '');
  const out = p.output ?? `${base}${stage === 'fixed' ? `.${p.dialect}` : ''}.onnx`;
  model.eval();
  const example = prepared.example();
  const warnings: string[] = [];
  const file = await exportOnnx(model, example, out, { dialect: p.dialect, onWarning: (w) => warnings.push(w) });
  // an int32 example (indices) is verified on itself; a float one on random values of its shape
  const verification = await verifyOnnx(model, file, p.dialect, prepared.inputShape, 4, example.dtype === 'int32' ? example : undefined);
  return {
    file,
    stage,
    bytes: fs.statSync(file).size,
    verification,
    notes: [...prepared.notes, ...warnings.map((w) => `warning: ${w}`)],
    ms: performance.now() - t0,
  };
}

/** The CLI demo's schedule and settings, run as a job (a worker thread), reporting through hooks. */
export async function runDemoAsJob(p: DemoParams, hooks: JobHooks): Promise<DemoSummary> {
  const r = await runDemoJob(
    {
      epochs: p.epochs ?? [2, 1, 1],
      dataset: 'fashion-mnist',
      batchSize: p.batchSize ?? 64,
      lr: 0.05,
      seed: p.seed ?? 0,
      limit: p.limit,
      bits: 8,
      straight: false,
      experiment: p.experiment,
      checkpointDir: p.checkpointDir,
      json: false,
    },
    hooks,
  );
  return {
    stages: r.stages.map((s) => ({ stage: s.stage, accuracy: s.accuracy, checkpoint: s.checkpoint })),
    floatAccuracy: r.floatAccuracy,
    fixedAccuracy: r.fixedAccuracy,
    seconds: r.seconds,
  };
}

if (require.main === module && process.send) {
  const connection = createMessageConnection(new IPCMessageReader(process), new IPCMessageWriter(process));
  const info = handled(async () => {
    await initBackend();
    const m = memory();
    return { backend: backendName(), pid: process.pid, memory: { tensors: m.tensors, bytes: m.bytes, wasmHeapBytes: m.wasmHeapBytes } };
  });
  connection.onRequest(Info, (token) => info(undefined, token));
  connection.onRequest(
    CheckpointSummaryRequest,
    handled(({ file }) => checkpointSummary(file)),
  );
  connection.onRequest(
    InspectRequest,
    handled(({ file }) => {
      const result = inspectCheckpoint(file);
      return { text: formatInspect(result), result };
    }),
  );
  connection.onRequest(
    TraceModelFileRequest,
    handled(({ file, traceOptions }) => traceModelFile(file, traceOptions)),
  );
  connection.onRequest(
    ExportOnnxRequest,
    handled((p) => exportAndVerify(p)),
  );
  connection.onRequest(
    ExportPytorchRequest,
    handled(async (p) => {
      await initBackend();
      return exportPytorchProject(p);
    }),
  );
  connection.onRequest(
    CheckChipRequest,
    handled(async ({ modelFile, checkpoint, python, platform }) => {
      await initBackend();
      return checkModelFileChip(modelFile, { checkpoint, python, platform });
    }),
  );
  connection.onRequest(
    CheckpointModelRequest,
    handled(async ({ checkpoint, modelFile, python }) => {
      await initBackend();
      return checkpointModel(checkpoint, modelFile, python);
    }),
  );
  connection.onRequest(
    ImportOnnxRequest,
    handled(({ file, trace, traceOptions }) => importOnnxModel(file, trace, traceOptions)),
  );
  connection.onRequest(
    RunDemoRequest,
    handled((p, token) =>
      runDemoAsJob(p, {
        onProgress: (x) => void connection.sendNotification(ProgressNotification, { job: 'demo', ...x }),
        onLog: (line) => void connection.sendNotification(LogNotification, { line }),
        cancelled: new Promise<void>((resolve) => token?.onCancellationRequested(() => resolve())),
      }),
    ),
  );
  connection.onRequest(
    CompareRequest,
    handled(async ({ a, b }) => {
      await initBackend();
      return compareCheckpoints(a, b);
    }),
  );
  connection.onRequest(
    TracePythonModelRequest,
    handled(async ({ file, className, inputShape, python, traceOptions }) => {
      try {
        return { ok: true as const, result: await tracePythonModel(file, { className, inputShape, python, traceOptions }) };
      } catch (e) {
        if (!(e instanceof PythonModelError)) throw e;
        return { ok: false as const, kind: e.kind, message: e.message, classes: e.classes, ...(e.frame ? { frame: e.frame } : {}) };
      }
    }),
  );
  connection.onRequest(
    ExperimentRequest,
    handled(async ({ files, title }) => {
      const report = experimentOfFiles(files, title);
      return { report, svgs: await renderExperimentCharts(report) };
    }),
  );
  connection.listen();
  // the extension going away (or closing the channel) ends this process
  process.on('disconnect', () => process.exit(0));
}
