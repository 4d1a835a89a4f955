// LoadOrderAnalyzer: source text → load-order diagnostics (SPEC §8). Create it once (it loads the
// WASM grammars), then analyze synchronously as often as needed. It never throws from analyze*:
// broken code parses with error nodes and is analysed as far as it goes, and an internal failure
// returns the diagnostics found up to it.
import type { ParseState, Range as TsRange } from '@vscode/tree-sitter-wasm';
import type { LoadOrderDiagnostic, NotebookDiagnostic, Position, SourceLanguage } from './diagnostic';
import { SEVERITY } from './diagnostic';
import { EcmaFrontEnd } from './ecmascript';
import type { Scope } from './flow';
import { KeywordIndex } from './frontend';
import { loadGrammars, type Grammars } from './grammars';
import { analyzeCellGroups, notebookCells, type CellSource } from './notebook';
import { ecmaImportWords, pythonImportWords, pythonIncludedRanges } from './prefilter';
import { PythonFrontEnd } from './python';
import { loadMoveFix, type OffsetFix } from './quickFix';
import { ScopeChecker, type Finding } from './rules';

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
      if (this.starts[mid] <= o) lo = mid; else hi = mid - 1;
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
  /** Give up parsing after this many ms (default 5000; a minified or binary file), returning no diagnostics. */
  timeoutMs?: number;
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
      const lines = new LineIndex(source);
      const found = this.analyzeText(source, language, (o) => `line ${lines.position(o).line + 1}`, opts);
      return found.map((d) => ({
        code: d.code,
        severity: SEVERITY[d.code],
        message: d.message,
        range: { start: lines.position(d.start), end: lines.position(d.end) },
        ...(d.fix ? { fix: { title: d.fix.title, edits: d.fix.edits.map((e) => ({ range: { start: lines.position(e.start), end: lines.position(e.end) }, newText: e.newText })) } } : {}),
      }));
    } catch {
      return [];
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
    } catch {
      return [];
    }
  }

  /** Diagnostics of a Jupyter notebook (`.ipynb` JSON text or parsed object). Never throws; invalid JSON gives none. */
  analyzeNotebook(ipynb: string | object, opts: AnalyzeOptions = {}): NotebookDiagnostic[] {
    let cells: CellSource[];
    try {
      cells = notebookCells(typeof ipynb === 'string' ? JSON.parse(ipynb) : ipynb);
    } catch {
      return [];
    }
    return this.analyzeCells(cells, opts);
  }

  /** The findings of a text as offsets; `where(offset)` names a place in messages. */
  analyzeText(text: string, language: SourceLanguage, where: (offset: number) => string, opts: AnalyzeOptions = {}): OffsetDiagnostic[] {
    const out: OffsetDiagnostic[] = [];
    try {
      const keywords = new KeywordIndex(text, language === 'python' ? pythonImportWords(text) : ecmaImportWords(text));
      if (!keywords.mayHoldDiagnostic(0, text.length)) return out; // fewer than two linger words: nothing to find
      let includedRanges: TsRange[] | undefined;
      if (language === 'python' && opts.prefilter !== false) {
        const ranges = pythonIncludedRanges(text, (s, e) => keywords.mayHoldDiagnostic(s, e));
        if (ranges && ranges.length === 0) return out;
        if (ranges) {
          const lines = new LineIndex(text);
          includedRanges = ranges.map(([s, e]) => ({
            startIndex: s, endIndex: e,
            startPosition: toPoint(lines.position(s)), endPosition: toPoint(lines.position(e)),
          }));
        }
      }
      const parser = this.grammars.parsers[language];
      const deadline = performance.now() + (opts.timeoutMs ?? 5000);
      // tree-sitter cancels the parse when the progress callback returns true (its typings say void)
      const progressCallback = (() => performance.now() > deadline) as unknown as (state: ParseState) => void;
      const tree = parser.parse(text, null, includedRanges ? { includedRanges, progressCallback } : { progressCallback });
      if (!tree) {
        parser.reset(); // cancelled: the next parse must start afresh, not resume this one
        return out;
      }
      let scopes: Scope[] = [];
      try {
        const fe = language === 'python' ? new PythonFrontEnd(text, keywords) : new EcmaFrontEnd(text, keywords);
        try {
          fe.run(tree.rootNode);
        } catch {
          // keep the scopes built so far
        }
        scopes = fe.scopes;
      } finally {
        tree.delete();
      }
      const firstBreak = text.indexOf('\n');
      const eol = firstBreak > 0 && text[firstBreak - 1] === '\r' ? '\r\n' : '\n';
      for (const scope of scopes) {
        const checker = new ScopeChecker({ language, where });
        try {
          checker.run(scope);
        } catch {
          // keep what this scope found so far
        }
        for (const f of checker.findings) {
          const d: OffsetDiagnostic = { code: f.code, start: f.span.start, end: f.span.end, message: f.message };
          if (f.load && f.lastTransform) {
            try {
              const fix = loadMoveFix(text, f.load, f.lastTransform, `Move ${f.load.callee}() after ${f.lastTransform.callee} (${where(f.lastTransform.span.start)})`, eol);
              if (fix) d.fix = fix;
            } catch {
              // no fix
            }
          }
          out.push(d);
        }
      }
    } catch {
      // an analyzer failure never escapes: return what was found
    }
    return out.sort((a, b) => a.start - b.start || a.code.localeCompare(b.code));
  }
}

function toPoint(p: Position): { row: number; column: number } {
  return { row: p.line, column: p.col };
}
