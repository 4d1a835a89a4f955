#!/usr/bin/env node
// The `linger` command line: demo, bench, inspect, export, check, run, new-notebook, info.
import { parseArgs } from 'node:util';
import { backendName, initBackend } from './backend/select';
import { runBench } from './cli/bench';
import { DemoOptions, DemoOptionsError, runDemo, validateDemoOptions } from './services/demo';
import { formatBytes, memory } from './memory';

const USAGE = `usage: linger <command> [options]

commands:
  demo    linger's two-stage path on the demo CNN and Fashion-MNIST (the embedded default):
          float training → traceLayers + normalizeLayers + fine-tune → init + QAT, with a
          checkpoint per stage in checkpoints/<experiment>/<stage>.safetensors
          --epochs F,S,Q (2,1,1: float, float stage, QAT)  --bits N (8)  --straight (skip the
          float stage)  --float-checkpoint FILE  --dataset fashion-mnist|mnist  --batch N (64)
          --lr X (0.05)  --seed N (0)  --limit N (images per class, quick runs)
          --experiment NAME (demo, demo-gru)  --checkpoints DIR (checkpoints)  --workers N
          (training threads, data-parallel; default one per core, 1 = one thread)  --json
          every option is checked before any work; a run locks checkpoints/<experiment>
          (a .lock file): a second run into the same folder stops with an error naming the
          first (use another --experiment); each checkpoint records its parent's sha256
          --model cnn|gru (cnn; gru: the sequence demo, Conv1d–BN–ReLU–GRU–Linear reading
          each image row by row, 28 steps of 28 features)
  bench   training-step time of the demo CNN at every stage on 1 thread and float/QAT on N
          data-parallel workers, and of the same CNN in PyTorch on 1 and N threads when python3
          has torch (PyTorch takes turns with the engine); medians with their 25th–75th
          percentiles, the ratios at equal cores, one epoch of the demo on N workers, and the
          sequence demo's (GRU, and an LSTM twin) float and QAT steps and eval on 1 thread
          --workers N (cores)  --steps N (30)  --warmup N (5)  --batch N (64)  --no-torch
          --no-epoch  --python PATH  --json (stdout: one JSON object only)
  inspect a checkpoint's metadata and tensors (name, dtype, shape, min, max)
          <checkpoint.safetensors>  --json
  trace   a model before and after linger's traceLayers, as PyTorch prints it: a PyTorch model
          file (net.py, run by your Python: --class NAME --input-shape 1,1,28,28 --python PATH)
          or a TypeScript/JavaScript model file; --json
  experiment  an experiment folder's runs (checkpoints linked by their parents), each stage's
          metrics, and notes where a number would surprise: <folder | checkpoints…> [--json]
  export  a model file (createModel + inputShape) to ONNX at a checkpoint's stage
          <model file> [--checkpoint FILE] [--dialect qdq|thinker] -o out.onnx
  export-pytorch  an experiment as a PyTorch + linger project for GPUs and clusters (torchrun):
          <checkpoint | model file> [--checkpoint FILE] -o dir/ [--data | --no-data] [--limit N]
          [--force]: model.py, weights, recipe.json, train.py, README.md
  check-chip  a model against the chip's rules before training (venus: thinker v1.1.0's tpacker):
          <model file | checkpoint | model.onnx> [--platform venus] [--json]; exits 1 on an error
  check   flag state-dict loads in the wrong place of the linger pipeline (LINGER001–005) in
          Python, TypeScript/JavaScript files and notebooks: linger check <files|dirs|globs>
          [--format json]; exits 1 when an error is found
  run     a Jupyter notebook's TypeScript cells with the Linger kernel, headless (like
          jupyter nbconvert --execute): <notebook.ipynb> [--inplace | -o out.ipynb]
          [--timeout S (per cell)] [--allow-errors] [--kernel linger (run a notebook whose
          kernel names another language as TypeScript anyway; refused without it)]; writes
          <name>.out.ipynb by default; a source that is not text or invalid UTF-8 is refused
  new-notebook  the experiment notebook template (the two stages on Fashion-MNIST)
          [file.ipynb (experiment.ipynb)] [--full (QUICK = false: the demo's schedule)] [--force]
  info    the TF.js backend in use (LINGER_BACKEND=tensorflow|wasm|cpu forces one) and its memory
`;

function num(v: string | undefined, name: string, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new UsageError(`--${name} expects a number, got '${v}'`);
  return n;
}
class UsageError extends Error {}

/** --epochs F,S,Q (float, float stage, QAT); a single number N means N,1,1. */
function schedule(v: string | undefined): [number, number, number] {
  if (v === undefined) return [2, 1, 1];
  const parts = v.split(',').map((p) => Number(p.trim()));
  if (parts.some((p) => !Number.isInteger(p) || p < 0) || (parts.length !== 1 && parts.length !== 3)) {
    throw new UsageError(`--epochs expects N or F,S,Q (whole numbers), got '${v}'`);
  }
  return parts.length === 1 ? [parts[0], 1, 1] : [parts[0], parts[1], parts[2]];
}

/** --workers N: a whole number ≥ 1; absent = one per core (0). */
function workersOption(v: string | undefined): number {
  if (v === undefined) return 0;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new UsageError(`--workers expects a whole number from 1 to 64, got '${v}'`);
  return n;
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    process.stdout.write(USAGE);
    return cmd ? 0 : 2;
  }
  const stdout = (s: string) => process.stdout.write(s + '\n');
  const stderr = (s: string) => process.stderr.write(s + '\n');
  if (cmd === 'inspect') return (await import('./cli/inspect')).runInspect(rest, stdout, stderr);
  if (cmd === 'trace') return (await import('./cli/trace')).runTrace(rest, stdout, stderr);
  if (cmd === 'experiment') return (await import('./cli/experiment')).runExperiment(rest, stdout, stderr);
  if (cmd === 'export') return (await import('./cli/export')).runExport(rest, stdout, stderr);
  if (cmd === 'export-pytorch') return (await import('./cli/exportPytorch')).runExportPytorch(rest, stdout, stderr);
  if (cmd === 'check-chip') return (await import('./cli/checkChip')).runCheckChip(rest, stdout, stderr);
  if (cmd === 'run') return (await import('./cli/run')).runRun(rest, stdout, stderr);
  if (cmd === 'new-notebook') return (await import('./cli/run')).runNewNotebook(rest, stdout, stderr);
  if (cmd === 'check') {
    // its own options; loads no TF.js
    const { runCheck } = await import('./cli/check');
    return runCheck(rest, (s) => process.stdout.write(s.endsWith('\n') ? s : s + '\n'));
  }
  const { values } = parseArgs({
    args: rest,
    options: {
      epochs: { type: 'string' },
      dataset: { type: 'string' },
      batch: { type: 'string' },
      lr: { type: 'string' },
      seed: { type: 'string' },
      limit: { type: 'string' },
      json: { type: 'boolean' },
      steps: { type: 'string' },
      bits: { type: 'string' },
      straight: { type: 'boolean' },
      'float-checkpoint': { type: 'string' },
      experiment: { type: 'string' },
      checkpoints: { type: 'string' },
      model: { type: 'string' },
      warmup: { type: 'string' },
      'no-torch': { type: 'boolean' },
      python: { type: 'string' },
      workers: { type: 'string' },
      'no-epoch': { type: 'boolean' },
    },
    strict: true,
  });
  const log = values.json ? (s: string) => process.stderr.write(s + '\n') : (s: string) => process.stdout.write(s + '\n');
  switch (cmd) {
    case 'demo': {
      const dataset = values.dataset ?? 'fashion-mnist';
      if (dataset !== 'fashion-mnist' && dataset !== 'mnist')
        throw new UsageError(`--dataset must be fashion-mnist or mnist, got '${dataset}'`);
      const model = values.model ?? 'cnn';
      if (model !== 'cnn' && model !== 'gru') throw new UsageError(`--model must be cnn or gru, got '${model}'`);
      const options: DemoOptions = {
        model,
        epochs: schedule(values.epochs),
        dataset,
        batchSize: num(values.batch, 'batch', 64),
        lr: num(values.lr, 'lr', 0.05),
        seed: num(values.seed, 'seed', 0),
        limit: values.limit !== undefined ? num(values.limit, 'limit', 0) : undefined,
        json: Boolean(values.json),
        bits: num(values.bits, 'bits', 8),
        straight: Boolean(values.straight),
        floatCheckpoint: values['float-checkpoint'],
        experiment: values.experiment ?? (model === 'gru' ? 'demo-gru' : 'demo'),
        checkpointDir: values.checkpoints ?? 'checkpoints',
        workers: workersOption(values.workers),
      };
      // every option checked before the backend starts or any data loads (issue 21)
      try {
        validateDemoOptions(options);
      } catch (e) {
        if (e instanceof DemoOptionsError) throw new UsageError(e.message);
        throw e;
      }
      const r = await runDemo(options, log);
      if (values.json) process.stdout.write(JSON.stringify(r, null, 2) + '\n');
      return 0;
    }
    case 'bench': {
      const r = await runBench(
        {
          steps: num(values.steps, 'steps', 30),
          warmup: num(values.warmup, 'warmup', 5),
          batch: num(values.batch, 'batch', 64),
          torch: !values['no-torch'],
          python: values.python ?? '/usr/bin/python3',
          ...(values.workers ? { workers: workersOption(values.workers) } : {}),
          demoEpoch: !values['no-epoch'],
        },
        log,
      );
      if (values.json) process.stdout.write(JSON.stringify(r, null, 2) + '\n');
      return 0;
    }
    case 'info': {
      await initBackend();
      const m = memory();
      log(`backend: ${backendName()}`);
      log(
        `memory: ${m.tensors} tensors, ${formatBytes(m.bytes)}` +
          (m.wasmHeapBytes ? `; wasm heap ${formatBytes(m.wasmHeapBytes)} of at most 4 GiB` : ''),
      );
      log(
        `dropped tensors: ${m.syncRelease ? 'released at safe points, inside synchronous loops too' : 'released between event-loop turns (no synchronous collection in this runtime)'}`,
      );
      return 0;
    }
    default:
      throw new UsageError(`unknown command '${cmd}'`);
  }
}

// `linger check … | head` closes the pipe early: that is not an error
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw e;
});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    if (e instanceof UsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`linger: ${(e as Error).message}\n\n${USAGE}`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`linger: ${e instanceof Error ? e.message : String(e)}\n`);
      if (process.env.LINGER_DEBUG && e instanceof Error) process.stderr.write(`${e.stack}\n`);
      process.exitCode = 1;
    }
  },
);
