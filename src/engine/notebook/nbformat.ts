// Jupyter notebooks (nbformat 4): read leniently, as Jupyter's own `nbformat` does (any 4.x
// minor, multi-line strings as lists or strings, missing cell ids generated, unknown metadata
// kept), and written as valid nbformat 4.5 with Jupyter's layout (one-space indent, sources and
// text outputs as lists of lines), so `git diff` stays small and every Jupyter tool opens them.
import { randomBytes } from 'node:crypto';
import type { NbOutput } from './messages';

export interface NbCell {
  id: string;
  cell_type: 'code' | 'markdown' | 'raw';
  source: string;
  metadata: Record<string, unknown>;
  outputs?: NbOutput[];
  execution_count?: number | null;
  attachments?: Record<string, unknown>;
}

export interface Notebook {
  nbformat: 4;
  nbformat_minor: number;
  metadata: Record<string, unknown>;
  cells: NbCell[];
}

/** A file that is not a notebook Linger can read: says why and where. */
export class NotebookFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NotebookFormatError';
  }
}

const joined = (v: unknown): string => (Array.isArray(v) ? v.join('') : typeof v === 'string' ? v : '');
const CELL_KEYS = new Set(['id', 'cell_type', 'source', 'metadata', 'outputs', 'execution_count', 'attachments']);

/** A new cell id as nbformat makes them (8 hex digits). */
export function newCellId(): string {
  return randomBytes(4).toString('hex');
}

/** The kernel languages whose cells the Linger kernel runs. */
const OUR_LANGUAGES = new Set(['typescript', 'javascript']);

/**
 * Why the Linger kernel should not run this notebook, if it should not: its kernelspec or
 * language_info names another language (a Python notebook run as TypeScript fails on its first
 * `print`). A notebook that names no language is ours.
 */
export function foreignKernel(nb: Notebook): string | undefined {
  const spec = isObject(nb.metadata.kernelspec) ? nb.metadata.kernelspec : {};
  const info = isObject(nb.metadata.language_info) ? nb.metadata.language_info : {};
  const lang = typeof spec.language === 'string' ? spec.language : typeof info.name === 'string' ? info.name : undefined;
  if (spec.name === LINGER_KERNELSPEC.name || lang === undefined || OUR_LANGUAGES.has(lang.toLowerCase())) return undefined;
  const name = typeof spec.name === 'string' ? ` (kernel ${JSON.stringify(spec.name.slice(0, 40))})` : '';
  return `its kernel language is ${JSON.stringify(lang.slice(0, 40))}${name}, and the Linger kernel runs TypeScript`;
}

/** Decodes a notebook file's bytes as UTF-8; invalid UTF-8 is a NotebookFormatError (Jupyter refuses it too). */
export function decodeNotebook(bytes: Uint8Array, file = 'notebook'): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    let at = 0;
    while (at < bytes.length && bytes[at] < 0x80) at++;
    throw new NotebookFormatError(`${file} is not UTF-8 text (an invalid byte at or after offset ${at}); Jupyter notebooks are UTF-8 JSON`);
  }
}

/** The kernelspec and language Linger notebooks carry (the extension prefers its kernel for these). */
export const LINGER_KERNELSPEC = { name: 'linger', display_name: 'Linger (TypeScript)', language: 'typescript' };
export const LINGER_LANGUAGE_INFO = { name: 'typescript', file_extension: '.ts', mimetype: 'text/typescript' };

/**
 * Parses a notebook. Anything that is not JSON, not an object with a `cells` list, or not
 * nbformat 4 is a NotebookFormatError naming the problem (the file is never touched here).
 * `dropped` collects keys outside nbformat's schema (they cannot be written back as valid 4.5).
 */
export function parseNotebook(text: string, file = 'notebook', dropped: string[] = []): Notebook {
  let raw: unknown;
  try {
    raw = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (e) {
    const msg = (e as Error).message;
    const pos = /position (\d+)/.exec(msg);
    let where = '';
    if (pos) {
      const before = text.slice(0, Number(pos[1]));
      where = ` at line ${before.split('\n').length}, column ${Number(pos[1]) - before.lastIndexOf('\n')}`;
    }
    throw new NotebookFormatError(`${file} is not valid JSON${where}: ${msg.replace(/^.*?JSON[^:]*: ?/, '')}`);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw))
    throw new NotebookFormatError(`${file} is not a Jupyter notebook: the top level is not a JSON object`);
  const nb = raw as Record<string, unknown>;
  if (nb.nbformat !== 4) {
    const v = nb.nbformat === undefined ? 'it has no nbformat field' : `it is nbformat ${JSON.stringify(nb.nbformat)}`;
    throw new NotebookFormatError(
      `${file} is not a Jupyter notebook Linger can read: ${v} (nbformat 4 is supported; Jupyter's \`jupyter nbconvert --to notebook\` upgrades older files)`,
    );
  }
  if (!Array.isArray(nb.cells)) throw new NotebookFormatError(`${file} is not a Jupyter notebook: it has no list of cells`);
  for (const k of Object.keys(nb)) if (!['nbformat', 'nbformat_minor', 'metadata', 'cells'].includes(k)) dropped.push(k);
  const ids = new Set<string>();
  const cells = nb.cells.map((c: unknown, i: number): NbCell => {
    if (!c || typeof c !== 'object') throw new NotebookFormatError(`${file}: cell ${i + 1} is not an object`);
    const cell = c as Record<string, unknown>;
    const type = cell.cell_type;
    if (type !== 'code' && type !== 'markdown' && type !== 'raw')
      throw new NotebookFormatError(`${file}: cell ${i + 1} has an unknown cell_type ${JSON.stringify(type)}`);
    for (const k of Object.keys(cell)) if (!CELL_KEYS.has(k)) dropped.push(`cells[${i}].${k}`);
    // nbformat's multiline string: a string or a list of strings; anything else would be emptied or joined into code nobody wrote
    const src = cell.source;
    if (src !== undefined && typeof src !== 'string' && !(Array.isArray(src) && src.every((x) => typeof x === 'string'))) {
      const what =
        src === null
          ? 'null'
          : Array.isArray(src)
            ? 'a list holding values that are not strings'
            : `${typeof src === 'object' ? 'an' : 'a'} ${typeof src}`;
      throw new NotebookFormatError(`${file}: cell ${i + 1} (${type}) has a source that is not a string or a list of strings (${what})`);
    }
    let id = typeof cell.id === 'string' && /^[a-zA-Z0-9-_]{1,64}$/.test(cell.id) && !ids.has(cell.id) ? cell.id : newCellId();
    while (ids.has(id)) id = newCellId();
    ids.add(id);
    const out: NbCell = { id, cell_type: type, source: joined(cell.source), metadata: isObject(cell.metadata) ? cell.metadata : {} };
    if (type === 'code') {
      out.execution_count = typeof cell.execution_count === 'number' ? cell.execution_count : null;
      out.outputs = Array.isArray(cell.outputs) ? cell.outputs.filter(isObject).map(readOutput) : [];
    } else if (isObject(cell.attachments)) {
      out.attachments = cell.attachments;
    }
    return out;
  });
  return {
    nbformat: 4,
    nbformat_minor: typeof nb.nbformat_minor === 'number' ? nb.nbformat_minor : 0,
    metadata: isObject(nb.metadata) ? nb.metadata : {},
    cells,
  };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === 'object' && !Array.isArray(v);
}

function readData(d: unknown): Record<string, unknown> {
  if (!isObject(d)) return {};
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(d)) out[k] = Array.isArray(v) && v.every((x) => typeof x === 'string') ? v.join('') : v;
  return out;
}

function readOutput(o: Record<string, unknown>): NbOutput {
  switch (o.output_type) {
    case 'stream':
      return { output_type: 'stream', name: o.name === 'stderr' ? 'stderr' : 'stdout', text: joined(o.text) };
    case 'execute_result':
      return {
        output_type: 'execute_result',
        data: readData(o.data),
        metadata: isObject(o.metadata) ? o.metadata : {},
        execution_count: typeof o.execution_count === 'number' ? o.execution_count : null,
      };
    case 'error':
      return {
        output_type: 'error',
        ename: String(o.ename ?? 'Error'),
        evalue: String(o.evalue ?? ''),
        traceback: Array.isArray(o.traceback) ? o.traceback.map(String) : [],
      };
    default:
      return { output_type: 'display_data', data: readData(o.data), metadata: isObject(o.metadata) ? o.metadata : {} };
  }
}

/** Jupyter's multi-line string: a list of lines, each keeping its newline. */
function lines(s: string): string[] {
  return s.match(/[^\n]*\n|[^\n]+$/g) ?? [];
}

function writeData(d: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(d)) out[k] = typeof v === 'string' && (k.startsWith('text/') || k === 'image/svg+xml') ? lines(v) : v;
  return out;
}

function writeOutput(o: NbOutput): Record<string, unknown> {
  switch (o.output_type) {
    case 'stream':
      return { output_type: 'stream', name: o.name, text: lines(o.text) };
    case 'error':
      return { output_type: 'error', ename: o.ename, evalue: o.evalue, traceback: o.traceback };
    case 'execute_result':
      return { output_type: 'execute_result', data: writeData(o.data), metadata: o.metadata ?? {}, execution_count: o.execution_count };
    // an update_display_data never reaches a file: its display_data was replaced in place
    default:
      return { output_type: 'display_data', data: writeData(o.data), metadata: o.metadata ?? {} };
  }
}

/** The notebook as nbformat 4.5 JSON, laid out as Jupyter writes it. */
export function serializeNotebook(nb: Notebook): string {
  const cells = nb.cells.map((c) => {
    const base: Record<string, unknown> = { cell_type: c.cell_type };
    if (c.cell_type === 'code') base.execution_count = c.execution_count ?? null;
    base.id = c.id;
    base.metadata = c.metadata ?? {};
    if (c.cell_type === 'code') base.outputs = (c.outputs ?? []).map(writeOutput);
    else if (c.attachments) base.attachments = c.attachments;
    base.source = lines(c.source);
    return base;
  });
  return `${JSON.stringify({ cells, metadata: nb.metadata ?? {}, nbformat: 4, nbformat_minor: 5 }, null, 1)}\n`;
}

/**
 * Applies an output to a cell's list the way Jupyter front ends do: streams of the same name
 * append to the previous one, update_display_data replaces the display with its id in place.
 * `ids` maps display ids to their index in the list.
 */
export function applyOutput(outputs: NbOutput[], o: NbOutput, ids: Map<string, number>): void {
  if (o.output_type === 'update_display_data') {
    const i = ids.get(o.transient.display_id);
    if (i !== undefined) outputs[i] = { output_type: 'display_data', data: o.data, metadata: o.metadata };
    return;
  }
  const prev = outputs[outputs.length - 1];
  if (o.output_type === 'stream' && prev?.output_type === 'stream' && prev.name === o.name) {
    outputs[outputs.length - 1] = { ...prev, text: prev.text + o.text };
    return;
  }
  if (o.output_type === 'display_data' && o.transient) ids.set(o.transient.display_id, outputs.length);
  const { transient: _, ...kept } = o as NbOutput & { transient?: unknown };
  outputs.push(kept as NbOutput);
}
