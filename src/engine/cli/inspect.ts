// `linger inspect <checkpoint> [--json]`: the arguments and the output of the command; the
// reading and the report are services/inspect.ts's (the engine process shows the same report).
import { parseArgs } from 'node:util';
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
  let values: { json?: boolean; help?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args,
      options: { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    }));
  } catch (e) {
    err(`linger inspect: ${(e as Error).message}\n\n${INSPECT_USAGE}`);
    return 2;
  }
  if (values.help) {
    out(INSPECT_USAGE);
    return 0;
  }
  if (positionals.length !== 1) {
    err(`linger inspect: expected one checkpoint file, got ${positionals.length}\n\n${INSPECT_USAGE}`);
    return 2;
  }
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
