// Applying a quick fix's edits to a text, as an editor applies a workspace edit: every range is
// in the original text, and the edits do not overlap.
import { LineIndex } from './analyzer';
import type { TextEdit } from './diagnostic';

export function applyEdits(text: string, edits: readonly TextEdit[]): string {
  const lines = new LineIndex(text);
  const offsets = edits.map((e) => ({ start: lines.offset(e.range.start), end: lines.offset(e.range.end), newText: e.newText }));
  offsets.sort((a, b) => b.start - a.start || b.end - a.end);
  let out = text;
  for (const e of offsets) out = out.slice(0, e.start) + e.newText + out.slice(e.end);
  return out;
}
