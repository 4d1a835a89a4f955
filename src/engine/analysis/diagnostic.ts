// The analyzer's results: plain data, shaped so that the VS Code extension maps them 1:1 onto
// vscode.Diagnostic / vscode.CodeAction, and the CLI prints them. Positions are 0-based; columns
// count UTF-16 code units, as VS Code's do.

/** The load-order rules (docs/contract.md#load-order-diagnostics), and LINGER000: the file could not be analysed (docs/analysis.md). */
export type LoadOrderCode = 'LINGER000' | 'LINGER001' | 'LINGER002' | 'LINGER003' | 'LINGER004' | 'LINGER005';

/** "could not analyse: <reason>": the analyzer gave up on (part of) a text, so no rule was checked there. */
export const NOT_ANALYSED = 'LINGER000';
export type Severity = 'error' | 'warning';

/** The severity of each rule (docs/contract.md#load-order-diagnostics). */
export const SEVERITY: Readonly<Record<LoadOrderCode, Severity>> = {
  LINGER000: 'warning', // could not analyse: a deadline, a parser failure, not text, not a notebook
  LINGER001: 'error', // a load between the first and the last transform of a model
  LINGER002: 'warning', // a load before the first transform, when transforms follow
  LINGER003: 'error', // trace_layers / normalize_layers after init
  LINGER004: 'error', // trace_layers or init applied twice to one model
  LINGER005: 'warning', // trace_layers after normalize_layers
};

export interface Position {
  line: number;
  col: number;
}
export interface Range {
  start: Position;
  end: Position;
}
export interface TextEdit {
  range: Range;
  newText: string;
}
export interface QuickFix {
  title: string;
  edits: TextEdit[];
}

export interface LoadOrderDiagnostic {
  code: LoadOrderCode;
  severity: Severity;
  message: string;
  range: Range;
  /** Present for LINGER001/002 when the load can be moved safely: the preferred quick fix. */
  fix?: QuickFix;
}

/** Source languages the analyzer parses. */
export type SourceLanguage = 'python' | 'typescript' | 'tsx' | 'javascript';

/** A notebook edit: the range is inside cell `cell` (index into the notebook's cells). */
export interface CellTextEdit extends TextEdit {
  cell: number;
}
export interface CellQuickFix {
  title: string;
  edits: CellTextEdit[];
}

/**
 * A diagnostic of a notebook: `cell` indexes the notebook's cells (markdown cells included),
 * `range` is in that cell; -1 for a LINGER000 about the notebook as a whole (its JSON).
 */
export interface NotebookDiagnostic extends Omit<LoadOrderDiagnostic, 'fix'> {
  cell: number;
  fix?: CellQuickFix;
}
