#!/usr/bin/env node
// The `linger` command line: demo, bench, info.
import { parseArgs } from 'node:util';
import { backendName, initBackend } from './backend/select';
import { runBench } from './cli/bench';
import { runDemo } from './cli/demo';

const USAGE = `usage: linger <command> [options]

commands:
  demo    train the demo CNN on Fashion-MNIST (the embedded default) and evaluate it
          --epochs N (1)  --dataset fashion-mnist|mnist  --batch N (64)  --lr X (0.05)
          --seed N (0)  --limit N (images per class, for a quick run)  --json
  bench   training-step time of the demo CNN, and of the same CNN in PyTorch when
          python3 has torch (same thread count); prints the ratio
          --steps N (30)  --warmup N (5)  --batch N (64)  --no-torch  --python PATH  --json
  info    the TF.js backend in use (LINGER_BACKEND=tensorflow|wasm|cpu forces one)
`;

function num(v: string | undefined, name: string, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new UsageError(`--${name} expects a number, got '${v}'`);
  return n;
}
class UsageError extends Error {}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    process.stdout.write(USAGE);
    return cmd ? 0 : 2;
  }
  const { values } = parseArgs({
    args: rest,
    options: {
      epochs: { type: 'string' }, dataset: { type: 'string' }, batch: { type: 'string' }, lr: { type: 'string' },
      seed: { type: 'string' }, limit: { type: 'string' }, json: { type: 'boolean' }, steps: { type: 'string' },
      warmup: { type: 'string' }, 'no-torch': { type: 'boolean' }, python: { type: 'string' },
    },
    strict: true,
  });
  const log = values.json ? (s: string) => process.stderr.write(s + '\n') : (s: string) => process.stdout.write(s + '\n');
  switch (cmd) {
    case 'demo': {
      const dataset = values.dataset ?? 'fashion-mnist';
      if (dataset !== 'fashion-mnist' && dataset !== 'mnist') throw new UsageError(`--dataset must be fashion-mnist or mnist, got '${dataset}'`);
      const r = await runDemo({
        epochs: num(values.epochs, 'epochs', 1), dataset, batchSize: num(values.batch, 'batch', 64), lr: num(values.lr, 'lr', 0.05),
        seed: num(values.seed, 'seed', 0), limit: values.limit ? num(values.limit, 'limit', 0) : undefined, json: Boolean(values.json),
      }, log);
      if (values.json) process.stdout.write(JSON.stringify(r, null, 2) + '\n');
      return 0;
    }
    case 'bench': {
      const r = await runBench({
        steps: num(values.steps, 'steps', 30), warmup: num(values.warmup, 'warmup', 5), batch: num(values.batch, 'batch', 64),
        torch: !values['no-torch'], python: values.python ?? '/usr/bin/python3',
      }, log);
      if (values.json) process.stdout.write(JSON.stringify(r, null, 2) + '\n');
      return 0;
    }
    case 'info': {
      await initBackend();
      log(`backend: ${backendName()}`);
      return 0;
    }
    default:
      throw new UsageError(`unknown command '${cmd}'`);
  }
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
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
