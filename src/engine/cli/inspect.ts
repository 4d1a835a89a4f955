// `linger inspect <checkpoint> [--json]`: the arguments and the output of the command; the
// reading and the report are services/inspect.ts's (the engine process shows the same report).
import { commandArgs, usageError } from './args';
import { CheckpointFormatError } from '../state/safetensors';
import { formatInspect, inspectCheckpoint } from '../services/inspect';

export const INSPECT_USAGE = `usage: linger inspect <checkpoint.safetensors> [--json]

Prints a checkpoint's metadata (format, stage, model, time, metrics, parent, input shape,
module tree, optimizer) and a table of its tensors: name, dtype, shape, min, max, mean.
Any safetensors file can be inspected (e.g. one written from PyTorch). Exits 1 on a file that
is not a valid checkpoint, 2 on a usage error.
`;

/** The command: exit 0 on success, 1 on a bad file, 2 on a usage error. */
export async function runInspect(args: string[], out: (s: string) => void, err: (s: string) => void = out): Promise<number> {
  const parsed = commandArgs<{ json?: boolean }>('inspect', INSPECT_USAGE, args, { json: { type: 'boolean' } }, out, err);
  if (typeof parsed === 'number') return parsed;
  const { values, positionals } = parsed;
  if (positionals.length !== 1) return usageError('inspect', INSPECT_USAGE, `expected one checkpoint file, got ${positionals.length}`, err);
  try {
    const r = inspectCheckpoint(positionals[0]);
    out(values.json ? JSON.stringify(r, null, 2) : formatInspect(r));
    return 0;
  } catch (e) {
    if (e instanceof CheckpointFormatError) {
      err(`linger inspect: ${e.message}`);
      return 1;
    }
    throw e;
  }
}
