// Load-order analysis (docs/contract.md#load-order-diagnostics): pure, no vscode. The extension's diagnostics and code-action
// providers and `linger check` call LoadOrderAnalyzer.
export { LoadOrderAnalyzer, LineIndex } from './analyzer';
export type { AnalyzeOptions, OffsetDiagnostic } from './analyzer';
export { NOT_ANALYSED, SEVERITY } from './diagnostic';
export type {
  CellQuickFix,
  CellTextEdit,
  LoadOrderCode,
  LoadOrderDiagnostic,
  NotebookDiagnostic,
  Position,
  QuickFix,
  Range,
  Severity,
  SourceLanguage,
  TextEdit,
} from './diagnostic';
export { defaultWasmDir, languageForId, languageForPath, WASM_FILES } from './grammars';
export { maskIPython, notebookCells } from './notebook';
export type { CellSource } from './notebook';
export { applyEdits } from './edits';
