// The quick fix for LINGER001/002: move the load statement to just after the last transform of
// its model. The two statements are lifted to the innermost block holding both (a load inside
// `if resume:` moves with its `if`; a transform inside a branch is passed as the whole branch), so
// the move never changes which path the load is on. Only whole lines move, re-indented to the
// destination's indentation; a statement sharing its line with other code gets no fix.
import type { Item, LoadEffect, TransformEffect } from './flow';

export interface OffsetEdit {
  start: number;
  end: number;
  newText: string;
}
export interface OffsetFix {
  title: string;
  edits: OffsetEdit[];
}

function chain(item: Item): Item[] {
  const out: Item[] = [];
  for (let it: Item | null = item; it; it = it.parent) out.push(it);
  return out;
}

/** The statements to move and to move after: siblings in the innermost block holding both. */
export function moveUnits(load: Item, dest: Item): { move: Item; after: Item } | null {
  const destChain = chain(dest);
  for (const a of chain(load)) {
    const b = destChain.find((d) => d.block === a.block);
    if (!b) continue;
    if (a === b || b.span.start < a.span.end) return null; // the same compound statement, or not after it
    if (a !== load && a.hasTransform) return null; // moving the enclosing statement would move a transform too
    if (a === load && load.hasTransform) return null;
    return { move: a, after: b };
  }
  return null;
}

const TRAILER = /^[ \t]*;?[ \t]*(?:#.*|\/\/.*)?\r?$/;

/** The fix moving `load` after `last`; `eol` is the text's line break. */
export function loadMoveFix(text: string, load: LoadEffect, last: TransformEffect, title: string, eol: string): OffsetFix | null {
  const units = moveUnits(load.item, last.item);
  if (!units) return null;
  const { move, after } = units;

  // the lines of the moved statement, whole, with a trailing comment
  const lineStart = text.lastIndexOf('\n', move.span.start - 1) + 1;
  const indent = text.slice(lineStart, move.span.start);
  if (!/^[ \t]*$/.test(indent)) return null;
  let lineEnd = text.indexOf('\n', move.span.end);
  if (lineEnd < 0) lineEnd = text.length;
  if (!TRAILER.test(text.slice(move.span.end, lineEnd))) return null;
  const moved = text.slice(lineStart, lineEnd).replace(/\r$/, '').split(/\r?\n/);

  // where it goes: the line after the destination statement, at that statement's indentation
  const destLineStart = text.lastIndexOf('\n', after.span.start - 1) + 1;
  const destIndent = /^[ \t]*/.exec(text.slice(destLineStart, after.span.start))![0];
  const destLineEnd = text.indexOf('\n', after.span.end);
  const reindented = moved.map((l) => (l.startsWith(indent) ? destIndent + l.slice(indent.length) : l.trim() === '' ? '' : l));

  const edits: OffsetEdit[] = [];
  // delete the lines (with their line break; the last line of the file takes the break before it)
  if (lineEnd < text.length) edits.push({ start: lineStart, end: lineEnd + 1, newText: '' });
  else edits.push({ start: Math.max(0, lineStart - 1), end: text.length, newText: '' });
  if (destLineEnd < 0) edits.push({ start: text.length, end: text.length, newText: eol + reindented.join(eol) });
  else edits.push({ start: destLineEnd + 1, end: destLineEnd + 1, newText: reindented.join(eol) + eol });
  return { title, edits };
}
