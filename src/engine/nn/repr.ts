// Python's repr of the values PyTorch prints in module reprs.

/** Python's repr of a float: shortest round-trip digits, exponent form below 1e-4 or from 1e16. */
export function pyFloat(x: number | null | undefined): string {
  if (x === null || x === undefined) return 'None';
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const abs = Math.abs(x);
  if (abs >= 1e16 || abs < 1e-4) {
    const [mant, exp] = x.toExponential().split('e');
    const e = Number(exp);
    const sign = e < 0 ? '-' : '+';
    const digits = String(Math.abs(e)).padStart(2, '0');
    return `${mant}e${sign}${digits}`;
  }
  const s = String(x);
  return s.includes('.') || s.includes('e') ? s : `${s}.0`;
}

export function pyBool(b: boolean): string {
  return b ? 'True' : 'False';
}

/** A Python tuple of ints: (3, 3) or (3,). */
export function pyTuple(t: readonly number[]): string {
  return t.length === 1 ? `(${t[0]},)` : `(${t.join(', ')})`;
}

/** An int or a tuple as the user gave it (PyTorch prints pooling sizes unchanged). */
export function pyIntOrTuple(v: number | readonly number[]): string {
  return typeof v === 'number' ? String(v) : pyTuple(v);
}
