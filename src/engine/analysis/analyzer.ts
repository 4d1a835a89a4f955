// LoadOrderAnalyzer: source text → load-order diagnostics (docs/contract.md#load-order-diagnostics). Create it once (it loads the
// WASM grammars), then analyze synchronously as often as needed. It never throws from analyze*:
// broken code parses with error nodes and is analysed as far as it goes, and whatever it could
// not analyse (a deadline, a parser failure, not text, not a notebook) is reported as a LINGER000
// "could not analyse: <reason>" diagnostic beside what was found up to it (docs/analysis.md).
import type { Node as TsNode, ParseState, Range as TsRange } from '@vscode/tree-sitter-wasm';
import type { LoadOrderDiagnostic, NotebookDiagnostic, Position, SourceLanguage } from './diagnostic';
import { NOT_ANALYSED, SEVERITY } from './diagnostic';
import { EcmaFrontEnd } from './ecmascript';
import type { Scope } from './flow';
import { KeywordIndex } from './frontend';
import { loadGrammars, type Grammars } from './grammars';
import { analyzeCellGroups, notebookCells, type CellSource } from './notebook';
import { ecmaImportWords, pythonImportWords, pythonIncludedRanges } from './prefilter';
import { PythonFrontEnd } from './python';
import { loadMoveFix, type OffsetFix } from './quickFix';
import { RuleDeadlineError, ScopeChecker, type Finding } from './rules';

/** Line starts of a text: offset ↔ 0-based line/column (UTF-16), as editors count them. */
export class LineIndex {
  private readonly starts: number[] = [0];

  constructor(readonly text: string) {
    for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) this.starts.push(i + 1);
  }

  get lineCount(): number {
    return this.starts.length;
  }

  lineStart(line: number): number {
    return this.starts[Math.max(0, Math.min(line, this.starts.length - 1))];
  }

  position(offset: number): Position {
    const o = Math.max(0, Math.min(offset, this.text.length));
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid] <= o) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo, col: o - this.starts[lo] };
  }

  offset(p: Position): number {
    return Math.min(this.text.length, this.lineStart(p.line) + Math.max(0, p.col));
  }
}

/** A finding with offsets, before positions are given to it (file or notebook cell). */
export interface OffsetDiagnostic {
  code: Finding['code'];
  start: number;
  end: number;
  message: string;
  fix?: OffsetFix;
}

export interface AnalyzeOptions {
  /** Skip Python functions and classes without a linger keyword when parsing (default true). */
  prefilter?: boolean;
  /** Give up after this many ms of parsing and rule checking (default 5000; a minified or generated file), with a LINGER000. */
  timeoutMs?: number;
}

/** A LINGER000 at the start of the text. */
function notAnalysed(reason: string, at = 0): OffsetDiagnostic {
  return { code: NOT_ANALYSED, start: at, end: at, message: `could not analyse: ${reason}` };
}

const why = (e: unknown) =>
  e instanceof RangeError ? 'the code is nested too deeply' : `the analyzer failed (${String((e as Error)?.message ?? e).slice(0, 120)})`;

/** A notebook-level LINGER000 (cell -1: the notebook as a whole). */
function notebookNotAnalysed(reason: string, cell = -1): NotebookDiagnostic {
  return {
    code: NOT_ANALYSED,
    severity: SEVERITY[NOT_ANALYSED],
    message: `could not analyse: ${reason}`,
    cell,
    range: { start: { line: 0, col: 0 }, end: { line: 0, col: 0 } },
  };
}

export class LoadOrderAnalyzer {
  private constructor(private readonly grammars: Grammars) {}

  /** Loads tree-sitter and the Python, TypeScript, TSX and JavaScript grammars (see grammars.ts for `wasmDir`). */
  static async create(opts: { wasmDir?: string } = {}): Promise<LoadOrderAnalyzer> {
    return new LoadOrderAnalyzer(await loadGrammars(opts.wasmDir));
  }

  /** Diagnostics of one source file. Never throws. */
  analyze(source: string, language: SourceLanguage, opts: AnalyzeOptions = {}): LoadOrderDiagnostic[] {
    try {
      // a lone CR is a line break for editors too (same length: offsets stay)
      if (source.includes('\r')) source = source.replace(/\r(?!\n)/g, '\n');
      const lines = new LineIndex(source);
      const found = this.analyzeText(source, language, (o) => `line ${lines.position(o).line + 1}`, opts);
      return found.map((d) => ({
        code: d.code,
        severity: SEVERITY[d.code],
        message: d.message,
        range: { start: lines.position(d.start), end: lines.position(d.end) },
        ...(d.fix
          ? {
              fix: {
                title: d.fix.title,
                edits: d.fix.edits.map((e) => ({
                  range: { start: lines.position(e.start), end: lines.position(e.end) },
                  newText: e.newText,
                })),
              },
            }
          : {}),
      }));
    } catch (e) {
      return [
        {
          code: NOT_ANALYSED,
          severity: SEVERITY[NOT_ANALYSED],
          message: notAnalysed(typeof source === 'string' ? why(e) : 'the input is not text').message,
          range: { start: { line: 0, col: 0 }, end: { line: 0, col: 0 } },
        },
      ];
    }
  }

  /**
   * Diagnostics of notebook cells run top to bottom as one scope (each language's cells
   * together). `cells` are all the notebook's cells, in order: those of another language
   * (markdown) are skipped but keep their index. Never throws.
   */
  analyzeCells(cells: readonly CellSource[], opts: AnalyzeOptions = {}): NotebookDiagnostic[] {
    try {
      return analyzeCellGroups(cells, (text, language, where) => this.analyzeText(text, language, where, opts));
    } catch (e) {
      return [notebookNotAnalysed(why(e), Array.isArray(cells) && cells.length > 0 ? 0 : -1)];
    }
  }

  /**
   * Diagnostics of a Jupyter notebook (`.ipynb` JSON text or parsed object). Never throws; JSON
   * that is not a notebook, and cells whose source is not text, are LINGER000s.
   */
  analyzeNotebook(ipynb: string | object, opts: AnalyzeOptions = {}): NotebookDiagnostic[] {
    let nb: unknown;
    try {
      nb = typeof ipynb === 'string' ? JSON.parse(ipynb.replace(/^\uFEFF/, '')) : ipynb;
    } catch (e) {
      return [notebookNotAnalysed(`the notebook is not valid JSON (${String((e as Error).message).slice(0, 120)})`)];
    }
    const problem = notebookProblem(nb);
    if (problem) return [notebookNotAnalysed(problem)];
    const raw = (nb as { cells: unknown[] }).cells;
    const bad: NotebookDiagnostic[] = [];
    raw.forEach((c, i) => {
      const p = cellProblem(c);
      if (p) bad.push(notebookNotAnalysed(`cell ${i + 1} ${p}; the cells were analysed without it`, i));
    });
    let cells: CellSource[];
    try {
      cells = notebookCells(nb);
    } catch (e) {
      return [notebookNotAnalysed(why(e))];
    }
    return [...bad, ...this.analyzeCells(cells, opts)].sort(
      (a, b) => a.cell - b.cell || a.range.start.line - b.range.start.line || a.range.start.col - b.range.start.col,
    );
  }

  /** The findings of a text as offsets; `where(offset)` names a place in messages. */
  analyzeText(text: string, language: SourceLanguage, where: (offset: number) => string, opts: AnalyzeOptions = {}): OffsetDiagnostic[] {
    const out: OffsetDiagnostic[] = [];
    const deadline = performance.now() + (opts.timeoutMs ?? 5000);
    try {
      // NUL never occurs in source text: a binary file, or UTF-16 read as UTF-8
      const nul = text.indexOf('\0');
      if (nul >= 0)
        return [
          notAnalysed(`this is not text: it holds a NUL character at offset ${nul} (a binary file, or UTF-16 text; save it as UTF-8)`),
        ];
      // a lone CR ends a line for editors and Python, not for the grammars' scanners: same length, offsets stay
      if (text.includes('\r')) text = text.replace(/\r(?!\n)/g, '\n');
      const keywords = new KeywordIndex(text, language === 'python' ? pythonImportWords(text) : ecmaImportWords(text));
      if (!keywords.mayHoldDiagnostic(0, text.length)) return out; // fewer than two linger words: nothing to find
      let includedRanges: TsRange[] | undefined;
      if (language === 'python' && opts.prefilter !== false) {
        const ranges = pythonIncludedRanges(text, (s, e) => keywords.mayHoldDiagnostic(s, e));
        if (ranges && ranges.length === 0) return out;
        if (ranges) {
          const lines = new LineIndex(text);
          includedRanges = ranges.map(([s, e]) => ({
            startIndex: s,
            endIndex: e,
            startPosition: toPoint(lines.position(s)),
            endPosition: toPoint(lines.position(e)),
          }));
        }
      }
      const parser = this.grammars.parsers[language];
      if (!parser) return [notAnalysed(`no grammar for the language '${String(language).slice(0, 40)}'`)];
      // tree-sitter cancels the parse when the progress callback returns true (its typings say void)
      const progressCallback = (() => performance.now() > deadline) as unknown as (state: ParseState) => void;
      let tree;
      try {
        tree = parser.parse(text, null, includedRanges ? { includedRanges, progressCallback } : { progressCallback });
      } catch (e) {
        parser.reset();
        return [notAnalysed(`the parser failed (${String((e as Error)?.message ?? e).slice(0, 120)})`)];
      }
      if (!tree) {
        parser.reset(); // cancelled: the next parse must start afresh, not resume this one
        return [notAnalysed(`parsing took longer than ${opts.timeoutMs ?? 5000} ms (a minified or generated file?); no rule was checked`)];
      }
      let scopes: Scope[] = [];
      let hidden: { diagnostic: OffsetDiagnostic; end: number } | undefined;
      try {
        // a syntax error whose region holds linger calls hides them from the analysis: say so
        // rather than report "0 errors" (an unclosed bracket swallows everything after it)
        hidden = tree.rootNode.hasError ? hiddenBySyntaxError(tree.rootNode, keywords) : undefined;
        const fe = language === 'python' ? new PythonFrontEnd(text, keywords) : new EcmaFrontEnd(text, keywords);
        try {
          fe.run(tree.rootNode);
        } catch (e) {
          // keep the scopes built so far, and say the rest was not read
          out.push(notAnalysed(`${why(e)}; what follows the point it reached was not checked`));
        }
        scopes = fe.scopes;
      } finally {
        tree.delete();
      }
      const firstBreak = text.indexOf('\n');
      const eol = firstBreak > 0 && text[firstBreak - 1] === '\r' ? '\r\n' : '\n';
      let timedOut = false;
      for (const scope of scopes) {
        if (timedOut) break;
        const checker = new ScopeChecker({ language, where, deadline });
        try {
          checker.run(scope);
        } catch (e) {
          // keep what this scope found so far
          if (e instanceof RuleDeadlineError) {
            timedOut = true;
            out.push(
              notAnalysed(
                `checking the rules took longer than ${opts.timeoutMs ?? 5000} ms (a very long flow); the diagnostics shown are the ones found before`,
              ),
            );
          } else {
            out.push(notAnalysed(`${why(e)} while checking the rules`));
          }
        }
        for (const f of checker.findings) {
          const d: OffsetDiagnostic = { code: f.code, start: f.span.start, end: f.span.end, message: f.message };
          if (f.load && f.lastTransform) {
            try {
              const fix = loadMoveFix(
                text,
                f.load,
                f.lastTransform,
                `Move ${f.load.callee}() after ${f.lastTransform.callee} (${where(f.lastTransform.span.start)})`,
                eol,
              );
              if (fix) d.fix = fix;
            } catch {
              // no fix
            }
          }
          out.push(d);
        }
      }
      // the error region held linger calls and the analysis found nothing in it: they were hidden
      if (hidden && !out.some((d) => d.start >= hidden!.diagnostic.start && d.start < hidden!.end)) out.push(hidden.diagnostic);
    } catch (e) {
      // an analyzer failure never escapes: return what was found, and say the rest was not
      out.push(notAnalysed(why(e)));
    }
    return out.sort((a, b) => a.start - b.start || a.code.localeCompare(b.code));
  }
}

/** The first syntax error whose text holds two linger calls (a diagnostic it may hide): a LINGER000 at it, and where it ends. */
function hiddenBySyntaxError(root: TsNode, keywords: KeywordIndex): { diagnostic: OffsetDiagnostic; end: number } | undefined {
  // (the file as a whole may hold one: analyzeText checked before parsing; a recovery that only
  // inserted a MISSING token keeps the calls around it in the tree)
  for (const n of root.descendantsOfType('ERROR')) {
    if (!n || !keywords.mayHoldDiagnostic(n.startIndex, n.endIndex)) continue;
    const line = n.startPosition.row + 1;
    return {
      diagnostic: notAnalysed(
        `a syntax error at line ${line} hides the code after it from the analysis (fix it, and the load order is checked again)`,
        n.startIndex,
      ),
      end: n.endIndex,
    };
  }
  return undefined;
}

/** Why a parsed value is not a Jupyter notebook the analyzer can read, if it is not. */
function notebookProblem(nb: unknown): string | undefined {
  if (!nb || typeof nb !== 'object' || Array.isArray(nb))
    return `this is not a Jupyter notebook: the top level is ${Array.isArray(nb) ? 'a JSON list' : nb === null ? 'null' : `a ${typeof nb}`}, not an object`;
  if (!Array.isArray((nb as { cells?: unknown }).cells)) return 'this is not a Jupyter notebook: it has no list of cells';
  return undefined;
}

/** What is wrong with one notebook cell for analysis (nbformat: a source is a string or a list of strings). */
function cellProblem(c: unknown): string | undefined {
  if (!c || typeof c !== 'object' || Array.isArray(c)) return 'is not an object';
  const cell = c as { cell_type?: unknown; source?: unknown };
  if (cell.cell_type !== 'code') return undefined;
  const s = cell.source;
  if (typeof s === 'string' || (Array.isArray(s) && s.every((x) => typeof x === 'string'))) return undefined;
  return `has a source that is not a string or a list of strings (${s === undefined ? 'none' : s === null ? 'null' : Array.isArray(s) ? 'a list holding other values' : `${typeof s === 'object' ? 'an' : 'a'} ${typeof s}`})`;
}

function toPoint(p: Position): { row: number; column: number } {
  return { row: p.line, column: p.col };
}
