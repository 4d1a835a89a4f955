// `linger check <files or globs> [--format json]`: the load-order diagnostics (docs/contract.md#load-order-diagnostics) for
// Python, TypeScript, JavaScript files and Jupyter notebooks. Exit status: 1 when any error is
// found, 0 otherwise (warnings alone pass), 2 for a usage error, a file that cannot be read or one
// that could not be analysed (LINGER000: never "0 errors" for a file nobody read; docs/analysis.md).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { LoadOrderAnalyzer, languageForPath, NOT_ANALYSED, type LoadOrderDiagnostic, type NotebookDiagnostic } from '../analysis';
import { ioProblem, NotARegularFileError, readRegularFile } from '../state/files';

export const CHECK_USAGE = `usage: linger check <files, directories or globs>... [--format text|json]

Checks the state-dict load order of linger scripts (Python, TypeScript, JavaScript, .ipynb):
  LINGER001 error    a load between the first and the last transform of a model
  LINGER002 warning  a load before the first transform, when transforms follow
  LINGER003 error    trace_layers / normalize_layers after init
  LINGER004 error    trace_layers or init applied twice to one model
  LINGER005 warning  trace_layers after normalize_layers
  LINGER000 warning  could not analyse: a deadline passed, the parser failed, not UTF-8 text,
                     not a notebook (counted apart; the exit status is then 2)
Directories are searched for .py .ts .tsx .js .mjs .cjs .jsx .ipynb files (node_modules and
dot-folders skipped); globs support *, **, ?, [abc] and {a,b}.
Prints file:line:col: severity CODE: message (notebooks: file:cellN:line:col:, N from 1).
Exits 1 when an error is found, 0 otherwise, 2 on a usage error or when a file could not be
read (a FIFO, a device, a symlink loop: never opened) or analysed.
`;

/** One reported diagnostic, as `--format json` prints it (line/column 1-based; range 0-based). */
export interface CheckResult {
  file: string;
  /** Index of the notebook cell (0-based, markdown cells counted), for .ipynb files. */
  cell?: number;
  line: number;
  column: number;
  endLine: number;
  endColumn: number;
  code: LoadOrderDiagnostic['code'];
  severity: LoadOrderDiagnostic['severity'];
  message: string;
  range: LoadOrderDiagnostic['range'];
  fix?: LoadOrderDiagnostic['fix'] | NotebookDiagnostic['fix'];
}

class CheckUsageError extends Error {}

const SOURCE = /\.(py|pyw|ts|mts|cts|tsx|js|mjs|cjs|jsx|ipynb)$/i;
const SKIP_DIRS = new Set(['node_modules', '__pycache__']);

function isCheckable(file: string): boolean {
  return SOURCE.test(file) && !file.endsWith('.d.ts');
}

function walkDir(dir: string, out: string[]): void {
  const entries = fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name));
  for (const e of entries) {
    if (e.name.startsWith('.') || SKIP_DIRS.has(e.name)) continue;
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walkDir(p, out);
    // a FIFO or a socket with a source name is listed too: reading it reports what it is (never opens it)
    else if ((e.isFile() || e.isFIFO() || e.isSocket() || e.isCharacterDevice() || e.isBlockDevice()) && isCheckable(e.name)) out.push(p);
  }
}

const MAGIC = /[*?[{]/;

/** A glob segment (no slash) as a regular expression: * ? [..] {a,b}. */
function segmentRegex(seg: string): RegExp {
  let re = '';
  for (let i = 0; i < seg.length; i++) {
    const c = seg[i];
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = seg.indexOf(']', i + 1);
      if (end < 0) {
        re += '\\[';
        continue;
      }
      const body = seg.slice(i + 1, end).replace(/\\/g, '\\\\');
      re += `[${body.startsWith('!') ? '^' + body.slice(1) : body}]`;
      i = end;
    } else if (c === '{') {
      const end = seg.indexOf('}', i + 1);
      if (end < 0) {
        re += '\\{';
        continue;
      }
      re += `(?:${seg
        .slice(i + 1, end)
        .split(',')
        .map((a) =>
          a
            .replace(/[.+^$()|\\]/g, '\\$&')
            .replace(/\*/g, '[^/]*')
            .replace(/\?/g, '[^/]'),
        )
        .join('|')})`;
      i = end;
    } else re += c.replace(/[.+^$()|\\\]}]/g, '\\$&');
  }
  // like a shell, * does not match a leading dot
  return new RegExp(`^${seg.startsWith('.') ? '' : '(?!\\.)'}${re}$`);
}

/** Expands a glob against the file system (no dependency: node 20 has no fs.glob). */
export function expandGlob(pattern: string): string[] {
  const parts = pattern.split(/[\\/]+/);
  let base = path.isAbsolute(pattern) ? path.parse(path.resolve(pattern)).root : '.';
  let i = path.isAbsolute(pattern) ? 1 : 0;
  while (i < parts.length - 1 && !MAGIC.test(parts[i])) base = path.join(base, parts[i++]);
  const found = new Set<string>();
  const walk = (dir: string, idx: number): void => {
    if (idx >= parts.length) return;
    const part = parts[idx];
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    if (part === '**') {
      walk(dir, idx + 1);
      for (const e of entries) if (e.isDirectory() && !e.name.startsWith('.') && !SKIP_DIRS.has(e.name)) walk(path.join(dir, e.name), idx);
      return;
    }
    const re = segmentRegex(part);
    const last = idx === parts.length - 1;
    for (const e of entries) {
      if (!re.test(e.name)) continue;
      const p = path.join(dir, e.name);
      if (e.isDirectory()) {
        if (last) {
          const files: string[] = [];
          walkDir(p, files);
          files.forEach((f) => found.add(f));
        } else walk(p, idx + 1);
      } else if (last && e.isFile() && isCheckable(e.name)) {
        found.add(p);
      }
    }
  };
  walk(base, i);
  return [...found].sort();
}

/** The files named by the arguments: files as given, directories searched, globs expanded. */
export function collectFiles(patterns: string[]): string[] {
  const files: string[] = [];
  const seen = new Set<string>();
  const add = (f: string) => {
    if (!seen.has(path.resolve(f))) {
      seen.add(path.resolve(f));
      files.push(f);
    }
  };
  for (const p of patterns) {
    let stat: fs.Stats | undefined;
    try {
      stat = fs.statSync(p);
    } catch (e) {
      stat = undefined;
      // a symlink loop or a path through a file exists, just not as something to read: say so
      const code = (e as NodeJS.ErrnoException).code;
      if (code && code !== 'ENOENT') throw new CheckUsageError(`${p}: ${ioProblem(e)}`);
    }
    if (stat && !stat.isDirectory() && !stat.isFile() && isCheckable(p)) {
      add(p); // a FIFO, socket or device: reported when it is read (never opened)
      continue;
    }
    if (stat?.isDirectory()) {
      const found: string[] = [];
      walkDir(p, found);
      found.forEach(add);
    } else if (stat?.isFile()) {
      if (!isCheckable(p)) throw new CheckUsageError(`${p}: not a Python, TypeScript, JavaScript or notebook file`);
      add(p);
    } else if (MAGIC.test(p)) {
      const found = expandGlob(p);
      if (found.length === 0) throw new CheckUsageError(`no files match '${p}'`);
      found.forEach(add);
    } else {
      throw new CheckUsageError(`${p}: no such file or directory`);
    }
  }
  return files;
}

/**
 * A file's text: UTF-8 (a BOM dropped), or Latin-1 for a Python file that declares a coding
 * (PEP 263); anything else that is not UTF-8 is a LINGER000 rather than text full of U+FFFD.
 */
function decodeSource(bytes: Buffer, file: string): string | LoadOrderDiagnostic {
  if ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff))
    return notText('it is UTF-16 text (save it as UTF-8)');
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    const head = bytes.subarray(0, 400).toString('latin1').split(/\r?\n/).slice(0, 2).join('\n');
    if (/\.pyw?$/i.test(file) && /^[ \t\f]*#.*?coding[:=][ \t]*[-\w.]+/m.test(head)) return bytes.toString('latin1');
    let at = 0;
    for (let lo = 0, hi = bytes.length; lo < hi;) {
      // the first offset whose prefix does not decode: a binary search over a fatal decoder
      const mid = (lo + hi) >> 1;
      try {
        new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(0, mid + 1));
        lo = mid + 1;
        at = lo;
      } catch {
        hi = mid;
        at = lo;
      }
    }
    return notText(`it is not UTF-8 text (an invalid byte near offset ${at}: a binary file, or another encoding)`);
  }
}

function notText(reason: string): LoadOrderDiagnostic {
  return {
    code: NOT_ANALYSED,
    severity: 'warning',
    message: `could not analyse: ${reason}`,
    range: { start: { line: 0, col: 0 }, end: { line: 0, col: 0 } },
  };
}

function toResult(file: string, d: LoadOrderDiagnostic | NotebookDiagnostic): CheckResult {
  const r: CheckResult = {
    file,
    line: d.range.start.line + 1,
    column: d.range.start.col + 1,
    endLine: d.range.end.line + 1,
    endColumn: d.range.end.col + 1,
    code: d.code,
    severity: d.severity,
    message: d.message,
    range: d.range,
  };
  if ('cell' in d && d.cell >= 0) r.cell = d.cell; // -1: the notebook as a whole
  if (d.fix) r.fix = d.fix;
  return r;
}

export function formatResult(r: CheckResult): string {
  const where = r.cell === undefined ? `${r.file}:${r.line}:${r.column}` : `${r.file}:cell${r.cell + 1}:${r.line}:${r.column}`;
  return `${where}: ${r.severity} ${r.code}: ${r.message}`;
}

export async function runCheck(args: string[], out: (s: string) => void): Promise<number> {
  let values: { format?: string; help?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: { format: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    }));
  } catch (e) {
    out(`linger check: ${(e as Error).message}\n\n${CHECK_USAGE}`);
    return 2;
  }
  if (values.help) {
    out(CHECK_USAGE);
    return 0;
  }
  const format = values.format ?? 'text';
  if (format !== 'text' && format !== 'json') {
    out(`linger check: --format must be text or json, got '${format}'\n\n${CHECK_USAGE}`);
    return 2;
  }
  if (positionals.length === 0) {
    out(`linger check: no files given\n\n${CHECK_USAGE}`);
    return 2;
  }

  let files: string[];
  try {
    files = collectFiles(positionals);
  } catch (e) {
    if (e instanceof CheckUsageError) {
      out(`linger check: ${e.message}`);
      return 2;
    }
    throw e;
  }

  let analyzer: LoadOrderAnalyzer;
  try {
    analyzer = await LoadOrderAnalyzer.create();
  } catch (e) {
    out(`linger check: ${(e as Error).message}`);
    return 2;
  }
  const results: CheckResult[] = [];
  let unreadable = false;
  for (const file of files) {
    let bytes: Buffer;
    try {
      bytes = readRegularFile(file, 'source');
    } catch (e) {
      out(`linger check: cannot read ${file}: ${e instanceof NotARegularFileError ? e.problem : (e as Error).message}`);
      unreadable = true;
      continue;
    }
    const text = decodeSource(bytes, file);
    if (typeof text !== 'string') {
      results.push(toResult(file, text));
      continue;
    }
    const lang = languageForPath(file);
    const diags: Array<LoadOrderDiagnostic | NotebookDiagnostic> = file.toLowerCase().endsWith('.ipynb')
      ? analyzer.analyzeNotebook(text)
      : lang
        ? analyzer.analyze(text, lang)
        : [];
    results.push(...diags.map((d) => toResult(file, d)));
  }

  const notAnalysed = new Set(results.filter((r) => r.code === NOT_ANALYSED).map((r) => r.file)).size;
  const errors = results.filter((r) => r.severity === 'error').length;
  if (format === 'json') {
    out(JSON.stringify(results, null, 2));
  } else {
    for (const r of results) out(formatResult(r));
    const warnings = results.filter((r) => r.severity !== 'error' && r.code !== NOT_ANALYSED).length;
    out(
      `${files.length} file${files.length === 1 ? '' : 's'} checked: ${errors} error${errors === 1 ? '' : 's'}, ${warnings} warning${warnings === 1 ? '' : 's'}` +
        (notAnalysed ? `, ${notAnalysed} not analysed` : ''),
    );
  }
  if (unreadable || notAnalysed > 0) return 2;
  return errors > 0 ? 1 : 0;
}
