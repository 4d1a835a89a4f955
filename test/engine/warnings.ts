// Captures process warnings (the engine's LINGER_* codes) emitted while a function runs.
export function warningsDuring(fn: () => void): { code?: string; message: string }[] {
  const seen: { code?: string; message: string }[] = [];
  const orig = process.emitWarning;
  process.emitWarning = ((msg: string | Error, opts?: { code?: string }) => {
    seen.push({ message: String(msg), code: typeof opts === 'object' ? opts?.code : undefined });
  }) as typeof process.emitWarning;
  try {
    fn();
  } finally {
    process.emitWarning = orig;
  }
  return seen;
}
