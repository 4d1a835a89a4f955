// `linger experiment <folder | checkpoints…> [--json]`: an experiment's runs (checkpoints linked by
// their parents), each stage's metrics and the notes that explain a surprising number — the text
// of the extension's experiment view (services/experiment.ts; docs/experiments.md).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { commandArgs, usageError } from './args';
import { experimentOfFiles, formatExperiment } from '../services/experiment';

export const EXPERIMENT_USAGE = `usage: linger experiment <folder | checkpoint files> [--json]

Reads the checkpoints of an experiment folder (*.safetensors, *.pt, *.pth; headers only), links
them by their parents into runs (float → traced → fixed) and prints each run's metrics per stage,
then notes where a number would surprise (a short schedule, a quick run on part of the data, a
folded BatchNorm, a parent that changed). Several folders are overlaid. Exits 1 when a file cannot
be read, 2 on a usage error.
`;

const CHECKPOINT = /\.(safetensors|pt|pth)$/i;

export async function runExperiment(args: string[], out: (s: string) => void, err: (s: string) => void = out): Promise<number> {
  const parsed = commandArgs<{ json?: boolean }>('experiment', EXPERIMENT_USAGE, args, { json: { type: 'boolean' } }, out, err);
  if (typeof parsed === 'number') return parsed;
  const { values, positionals } = parsed;
  if (!positionals.length) return usageError('experiment', EXPERIMENT_USAGE, 'name an experiment folder or checkpoint files', err);
  const files: string[] = [];
  for (const p of positionals) {
    let st: fs.Stats;
    try {
      st = fs.statSync(p);
    } catch {
      err(`linger experiment: ${p}: no such file or folder`);
      return 2;
    }
    if (st.isDirectory()) {
      const here = fs
        .readdirSync(p)
        .filter((n) => CHECKPOINT.test(n))
        .sort()
        .map((n) => path.join(p, n));
      if (!here.length) {
        err(`linger experiment: ${p} holds no checkpoint (*.safetensors, *.pt, *.pth)`);
        return 2;
      }
      files.push(...here);
    } else files.push(p);
  }
  const r = experimentOfFiles(files);
  out(values.json ? JSON.stringify(r, null, 2) : formatExperiment(r));
  return r.unreadable.length ? 1 : 0;
}
