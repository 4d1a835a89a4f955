// Notebooks run top to bottom, so their code cells form one scope: the cells of one language are
// joined (one line break between cells), analysed as one text, and each diagnostic and fix edit
// is mapped back to its cell and the position inside it.
import type { CellTextEdit, NotebookDiagnostic, Position, SourceLanguage } from './diagnostic';
import { SEVERITY } from './diagnostic';
import { languageForId } from './grammars';
import type { OffsetDiagnostic } from './analyzer';
import type { OffsetEdit } from './quickFix';

/** A notebook cell: its text and language (a VS Code language id such as `python`, `typescript`, or `markdown`). */
export interface CellSource {
  text: string;
  language: string;
}

interface JupyterCell {
  cell_type?: string;
  source?: string | string[];
  metadata?: { vscode?: { languageId?: string } };
}
interface JupyterNotebook {
  cells?: JupyterCell[];
  metadata?: { kernelspec?: { language?: string }; language_info?: { name?: string } };
}

/** The cells of a Jupyter notebook (nbformat 4): code cells in the kernel's language, others as markdown. */
export function notebookCells(nb: unknown): CellSource[] {
  const book = nb as JupyterNotebook;
  if (!book || typeof book !== 'object' || !Array.isArray(book.cells)) return [];
  const language = book.metadata?.kernelspec?.language ?? book.metadata?.language_info?.name ?? 'python';
  return book.cells.map((c) => {
    const text = Array.isArray(c?.source) ? c.source.join('') : typeof c?.source === 'string' ? c.source : '';
    if (c?.cell_type !== 'code') return { text, language: c?.cell_type === 'markdown' ? 'markdown' : 'raw' };
    return { text, language: c.metadata?.vscode?.languageId ?? language };
  });
}

/**
 * IPython lines that are not Python (`%magic`, `!shell`) become comments of the same length, so
 * offsets stay; a `%%cell magic` cell is blanked.
 */
export function maskIPython(text: string): string {
  if (/^\s*%%/.test(text)) return text.replace(/[^\r\n]/g, ' ');
  return text.replace(/^([ \t]*)[%!]/gm, '$1#');
}

type TextAnalysis = (text: string, language: SourceLanguage, where: (offset: number) => string) => OffsetDiagnostic[];

interface Placed {
  cell: number;
  start: number;
  end: number;
}

function family(lang: SourceLanguage): 'python' | 'ecmascript' {
  return lang === 'python' ? 'python' : 'ecmascript';
}

export function analyzeCellGroups(cells: readonly CellSource[], analyze: TextAnalysis): NotebookDiagnostic[] {
  const groups = new Map<'python' | 'ecmascript', Array<{ cell: number; language: SourceLanguage; text: string }>>();
  cells.forEach((c, i) => {
    const lang = languageForId(c.language);
    if (!lang) return;
    const g = groups.get(family(lang)) ?? [];
    // a lone CR is a line break for editors too (same length: offsets stay)
    const text = c.text.includes('\r') ? c.text.replace(/\r(?!\n)/g, '\n') : c.text;
    g.push({ cell: i, language: lang, text: lang === 'python' ? maskIPython(text) : text });
    groups.set(family(lang), g);
  });
  const out: NotebookDiagnostic[] = [];
  for (const [fam, members] of groups) {
    const language: SourceLanguage =
      fam === 'python'
        ? 'python'
        : members.some((m) => m.language === 'tsx')
          ? 'tsx'
          : members.some((m) => m.language === 'typescript')
            ? 'typescript'
            : 'javascript';
    const placed: Placed[] = [];
    let text = '';
    for (const m of members) {
      if (placed.length > 0) text += '\n';
      placed.push({ cell: m.cell, start: text.length, end: text.length + m.text.length });
      text += m.text;
    }
    const cellAt = (offset: number): Placed => {
      let found = placed[0];
      for (const p of placed) if (p.start <= offset) found = p;
      return found;
    };
    const cellText = (p: Placed) => text.slice(p.start, p.end);
    const posIn = (p: Placed, offset: number): Position => {
      const o = Math.max(p.start, Math.min(offset, p.end));
      const before = text.slice(p.start, o);
      const line = before.split('\n').length - 1;
      return { line, col: o - p.start - (before.lastIndexOf('\n') + 1) };
    };
    const where = (offset: number) => {
      const p = cellAt(offset);
      return `cell ${p.cell + 1}, line ${posIn(p, offset).line + 1}`;
    };
    for (const d of analyze(text, language, where)) {
      const p = cellAt(d.start);
      const diag: NotebookDiagnostic = {
        code: d.code,
        severity: SEVERITY[d.code],
        message: d.message,
        cell: p.cell,
        range: { start: posIn(p, d.start), end: posIn(p, Math.min(d.end, p.end)) },
      };
      if (d.fix) {
        const edits = d.fix.edits.map((e) => mapEdit(e, placed, cellAt, posIn, cellText));
        if (edits.every((e): e is CellTextEdit => e !== null)) diag.fix = { title: d.fix.title, edits };
      }
      out.push(diag);
    }
  }
  return out.sort((a, b) => a.cell - b.cell || a.range.start.line - b.range.start.line || a.range.start.col - b.range.start.col);
}

/** An edit of the joined text as an edit of one cell, or null when it would cross cells. */
function mapEdit(
  e: OffsetEdit,
  placed: Placed[],
  cellAt: (o: number) => Placed,
  posIn: (p: Placed, o: number) => Position,
  cellText: (p: Placed) => string,
): CellTextEdit | null {
  if (e.start === e.end) {
    // an insertion at the start of a cell that follows the joining line break goes at the end of the cell before
    const p = cellAt(e.start);
    const i = placed.indexOf(p);
    if (e.start === p.start && i > 0) {
      const prev = placed[i - 1];
      const eol = cellText(prev).includes('\r\n') ? '\r\n' : '\n';
      return {
        cell: prev.cell,
        range: { start: posIn(prev, prev.end), end: posIn(prev, prev.end) },
        newText: eol + e.newText.replace(/\r?\n$/, ''),
      };
    }
    return { cell: p.cell, range: { start: posIn(p, e.start), end: posIn(p, e.start) }, newText: e.newText };
  }
  const p = cellAt(e.start);
  let { start, end } = e;
  if (end === p.end + 1) {
    // deleting a cell's last line: take the line break before it instead of the joining one
    end = p.end;
    if (start > p.start) start -= 1;
  }
  if (end > p.end) return null;
  return { cell: p.cell, range: { start: posIn(p, start), end: posIn(p, end) }, newText: e.newText };
}
