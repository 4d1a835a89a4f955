// Parsing is most of the analyzer's time (tree-sitter's WASM build parses Python at ~5 MB/s), and
// most of a long script is model code, data code and helpers that never mention linger. Python's
// top-level statements start at column 0, so the file splits into top-level chunks with a small
// lexer (strings, brackets, continuations); `def`/`class` chunks that cannot hold a diagnostic
// (fewer than two linger keywords: every rule needs two events) are left out of the parse through
// tree-sitter's included ranges (positions stay those of the whole file), so nothing is lost.

/** Identifiers of `import … linger …` / `from linger… import …` statements: the aliases to look for. */
export function pythonImportWords(text: string): string[] {
  const words = new Set<string>();
  const re = /^[ \t]*(?:from[ \t]+linger\b[\w.]*[ \t]+import[ \t]*(\([^)]*\)?|[^\n]*)|import[ \t]+([^\n]*\blinger\b[^\n]*))/gm;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    for (const w of (m[1] ?? m[2] ?? '').match(/[A-Za-z_]\w*/g) ?? []) {
      if (w !== 'import' && w !== 'as' && w !== 'from') words.add(w);
    }
    if (m[1] !== undefined && /\*/.test(m[1])) for (const w of ['trace_layers', 'normalize_layers', 'init', 'load']) words.add(w);
  }
  return [...words];
}

const ECMA_RESERVED = new Set(['import', 'export', 'from', 'as', 'const', 'let', 'var', 'require', 'type', 'default', 'await', 'typeof']);

/** Identifiers of import / require / destructuring statements that mention linger: the aliases to look for. */
export function ecmaImportWords(text: string): string[] {
  const words = new Set<string>();
  const re = /\b(?:import|export|const|let|var)\b[^;]*?\blinger\b[^;\n]*/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    for (const w of m[0].match(/[A-Za-z_$][\w$]*/g) ?? []) if (!ECMA_RESERVED.has(w)) words.add(w);
  }
  return [...words];
}

interface Chunk {
  start: number;
  end: number;
  skippable: boolean;
}

const CONTINUATION = /(?:else|elif|except|finally)\b/y;
const DEFINITION = /(?:def|class|async[ \t]+def)\b/y;

/** Top-level statement chunks of a Python file. */
export function pythonChunks(text: string): Chunk[] {
  const chunks: Chunk[] = [];
  let str: string | null = null; // the closing quote of the string we are in
  let depth = 0;
  let continued = false;
  let cur: (Chunk & { decoratorOnly: boolean }) | null = null;
  let i = 0;
  const n = text.length;
  while (i < n) {
    // at a line start
    if (str === null && depth === 0 && !continued) {
      const c = text.charCodeAt(i);
      const blank = c === 32 || c === 9 || c === 10 || c === 13 || c === 12 || c === 35; // space tab \n \r \f #
      if (!blank) {
        CONTINUATION.lastIndex = i;
        if (!CONTINUATION.test(text)) {
          const isDecorator = c === 64; // @
          DEFINITION.lastIndex = i;
          const isDef = DEFINITION.test(text);
          if (cur && cur.decoratorOnly && (isDef || isDecorator)) {
            // decorators stay with the definition they decorate
            cur.decoratorOnly = isDecorator;
          } else {
            if (cur) {
              cur.end = i;
              chunks.push(cur);
            }
            cur = { start: i, end: n, skippable: isDef || isDecorator, decoratorOnly: isDecorator };
          }
        }
      }
    }
    continued = false;
    // scan the line
    while (i < n) {
      const ch = text.charCodeAt(i);
      if (str !== null) {
        if (ch === 92) {
          i += 2;
          continue;
        } // backslash escapes the next character
        if (ch === 10) {
          i++;
          if (str.length === 1) str = null;
          break;
        } // a one-quote string ends at the line
        if (ch === str.charCodeAt(0) && (str.length === 1 || text.startsWith(str, i))) {
          i += str.length;
          str = null;
          continue;
        }
        i++;
        continue;
      }
      if (ch === 10) {
        i++;
        break;
      }
      if (ch === 35) {
        const e = text.indexOf('\n', i);
        i = e < 0 ? n : e;
        continue;
      } // #
      if (ch === 34 || ch === 39) {
        // " '
        const q = text[i];
        str = text.startsWith(q + q + q, i) ? q + q + q : q;
        i += str.length;
        continue;
      }
      if (ch === 40 || ch === 91 || ch === 123) depth++;
      else if (ch === 41 || ch === 93 || ch === 125) depth = depth > 0 ? depth - 1 : 0;
      else if (ch === 92) {
        const c1 = text.charCodeAt(i + 1);
        if (c1 === 10 || (c1 === 13 && text.charCodeAt(i + 2) === 10)) continued = true;
      }
      i++;
    }
  }
  if (cur) {
    cur.end = n;
    chunks.push(cur);
  }
  if (chunks.length === 0 || chunks[0].start > 0) chunks.unshift({ start: 0, end: chunks[0]?.start ?? n, skippable: false });
  return chunks.map(({ start, end, skippable }) => ({ start, end, skippable }));
}

/**
 * The parts of a Python file to parse, as [start, end) offsets, or null for the whole file;
 * `relevant(start, end)` says whether a definition there may hold a diagnostic.
 */
export function pythonIncludedRanges(text: string, relevant: (start: number, end: number) => boolean): Array<[number, number]> | null {
  const chunks = pythonChunks(text);
  const ranges: Array<[number, number]> = [];
  let skipped = false;
  for (const c of chunks) {
    if (c.skippable && !relevant(c.start, c.end)) {
      skipped = true;
      continue;
    }
    const last = ranges[ranges.length - 1];
    if (last && last[1] === c.start) last[1] = c.end;
    else ranges.push([c.start, c.end]);
  }
  return skipped ? ranges : null;
}
