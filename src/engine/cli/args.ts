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
