// The argument handling every `linger <command>` shares: node:util's parseArgs with --help, and a
// usage error printed with the command's usage text (exit 2) — one place, so the commands agree.
import { parseArgs, ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * Parsed options and positionals, or the exit code to return at once: 0 after --help (the usage
 * printed), 2 after a usage error (the message and the usage on `err`).
 */
export function commandArgs<V extends Record<string, string | boolean | undefined>>(
  name: string,
  usage: string,
  args: string[],
  options: Options,
  out: (s: string) => void,
  err: (s: string) => void,
): { values: V; positionals: string[] } | number {
  let parsed: { values: V; positionals: string[] };
  try {
    parsed = parseArgs({
      args,
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    }) as unknown as {
      values: V;
      positionals: string[];
    };
  } catch (e) {
    return usageError(name, usage, (e as Error).message, err);
  }
  if (parsed.values.help) {
    out(usage);
    return 0;
  }
  return parsed;
}

/** Prints `linger <name>: <message>` and the usage; the exit code of a usage error. */
export function usageError(name: string, usage: string, message: string, err: (s: string) => void): number {
  err(`linger ${name}: ${message}\n\n${usage}`);
  return 2;
}

/** The options of a PyTorch model file (trace, export): how the user's Python builds it. */
export const PYTHON_OPTIONS: Options = { class: { type: 'string' }, 'input-shape': { type: 'string' }, python: { type: 'string' } };

/**
 * --class, --input-shape and --python, checked: refused for a model file that is not Python (they
 * would be ignored), the shape positive whole numbers. The options, or the exit code of a usage error.
 */
export function pythonOptions(
  name: string,
  usage: string,
  values: { class?: string; 'input-shape'?: string; python?: string },
  file: string | undefined,
  err: (s: string) => void,
): { className?: string; inputShape?: number[]; python?: string } | number {
  let inputShape: number[] | undefined;
  if (values['input-shape'] !== undefined) {
    inputShape = values['input-shape'].split(',').map((d) => Number(d.trim()));
    if (!inputShape.length || inputShape.some((d) => !Number.isInteger(d) || d <= 0))
      return usageError(
        name,
        usage,
        `--input-shape expects positive whole numbers separated by commas (1,1,28,28), got '${values['input-shape']}'`,
        err,
      );
  }
  if (!/\.py$/i.test(file ?? '') && (values.class || inputShape || values.python))
    return usageError(
      name,
      usage,
      `--class, --input-shape and --python are for Python model files (.py); ${file ?? 'no model file'} is not one`,
      err,
    );
  return { className: values.class, inputShape, python: values.python };
}
