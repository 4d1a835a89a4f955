// A checkpoint's metadata and a summary of its tensors (name, dtype, shape, min, max, mean), for
// `linger inspect` (cli/inspect.ts) and the engine process's Inspect request (host/main.ts). Reads
// the file as data only; no model code runs.
import * as fs from 'node:fs';
import { CheckpointMetadata, OPTIMIZER_PREFIX, parentProblem, parseCheckpointMetadata, parseOptimizerMetadata } from '../state/checkpoint';
import { DTYPE_SIZES, RawTensor, readSafetensors } from '../state/safetensors';
import { Histogram, histogram, LayerQuantSummary, layerQuantSummaries } from './inspectLayers';
import { inferredStage } from '../state/pt/index';
import { fileHead, readPt, torchFormatOf } from '../state/pt/read';

/** A torch.save file (or a legacy one, which readPt names and refuses), by its first bytes. */
function isTorchFile(file: string): boolean {
  try {
    return torchFormatOf(fileHead(file)) !== undefined;
  } catch {
    return false; // unreadable: the safetensors reader says why
  }
}

export interface TensorSummary {
  name: string;
  dtype: string;
  shape: number[];
  /** null for an empty tensor or one with no finite value */
  min: number | null;
  max: number | null;
  /** mean of the finite values (null when there are none) */
  mean: number | null;
  /** NaN and ±∞ values */
  nonFinite: number;
  /** the finite values' distribution (tensors of 2 values or more) */
  histogram?: Histogram;
}

export interface InspectResult {
  file: string;
  fileSize: number;
  metadata: Omit<CheckpointMetadata, 'raw' | 'graph'> & { graphNodes?: number; stageInferred?: boolean };
  /** metadata entries that are not linger's */
  otherMetadata: Record<string, string>;
  tensors: TensorSummary[];
  optimizer?: { type: string; paramGroups: unknown; tensors: TensorSummary[] };
  /** values in the model's tensors (parameters and buffers) */
  values: number;
  /** the recorded parent is missing or not the file this one was made from (its sha256 changed) */
  parentProblem?: string;
  /** the fixed-point layers: bits, eval scales, weight codes */
  layers: LayerQuantSummary[];
}

function reader(r: RawTensor): (i: number) => number {
  const dv = new DataView(r.data.buffer, r.data.byteOffset, r.data.byteLength);
  switch (r.dtype) {
    case 'F64':
      return (i) => dv.getFloat64(i * 8, true);
    case 'F32':
      return (i) => dv.getFloat32(i * 4, true);
    case 'F16':
      return (i) => half(dv.getUint16(i * 2, true));
    case 'BF16':
      return (i) => new Float32Array(new Uint32Array([dv.getUint16(i * 2, true) << 16]).buffer)[0];
    case 'I64':
      return (i) => Number(dv.getBigInt64(i * 8, true));
    case 'I32':
      return (i) => dv.getInt32(i * 4, true);
    case 'I16':
      return (i) => dv.getInt16(i * 2, true);
    case 'I8':
      return (i) => dv.getInt8(i);
    case 'U8':
      return (i) => dv.getUint8(i);
    case 'BOOL':
      return (i) => (dv.getUint8(i) ? 1 : 0);
  }
}
function half(h: number): number {
  const s = h & 0x8000 ? -1 : 1,
    e = (h >> 10) & 0x1f,
    f = h & 0x3ff;
  return e === 0 ? s * f * 2 ** -24 : e === 31 ? (f ? NaN : s * Infinity) : s * (1 + f / 1024) * 2 ** (e - 15);
}

export function summarize(name: string, r: RawTensor): TensorSummary {
  const n = r.data.byteLength / DTYPE_SIZES[r.dtype];
  const at = reader(r);
  let min = Infinity,
    max = -Infinity,
    sum = 0,
    nonFinite = 0;
  for (let i = 0; i < n; i++) {
    const v = at(i);
    if (!Number.isFinite(v)) {
      nonFinite++;
      continue;
    }
    if (v < min) min = v;
    if (v > max) max = v;
    sum += v;
  }
  const some = min <= max;
  const h = histogram(n, at, some ? min : null, some ? max : null);
  return {
    name,
    dtype: r.dtype,
    shape: r.shape,
    min: some ? min : null,
    max: some ? max : null,
    mean: some ? sum / (n - nonFinite) : null,
    nonFinite,
    ...(h ? { histogram: h } : {}),
  };
}

/** Reads and summarizes a checkpoint (throws CheckpointFormatError on a bad file). */
export function inspectCheckpoint(file: string): InspectResult {
  // a torch.save file (docs/pt-checkpoints.md) by its first bytes, whatever its name; else safetensors
  const torch = isTorchFile(file);
  const f = torch ? readPt(file) : readSafetensors(file);
  const names = [...f.tensors.keys()];
  const meta = parseCheckpointMetadata(
    f.metadata,
    names.filter((n) => !n.startsWith(OPTIMIZER_PREFIX)),
    file,
  );
  if (torch && f.metadata['linger.stage'] === undefined) meta.stage = inferredStage(names, meta.stage);
  const opt = parseOptimizerMetadata(
    f.metadata,
    names.filter((n) => n.startsWith(OPTIMIZER_PREFIX)).map((n) => n.slice(OPTIMIZER_PREFIX.length)),
    file,
  );
  const tensors: TensorSummary[] = [];
  const slots: TensorSummary[] = [];
  let values = 0;
  for (const [name, r] of f.tensors) {
    if (name.startsWith(OPTIMIZER_PREFIX)) slots.push(summarize(name, r));
    else {
      tensors.push(summarize(name, r));
      values += r.shape.reduce((a, b) => a * b, 1);
    }
  }
  const { raw, graph, ...rest } = meta;
  const otherMetadata = Object.fromEntries(Object.entries(raw).filter(([k]) => !k.startsWith('linger.')));
  const optimizer = opt && { type: opt.type, paramGroups: opt.param_groups, tensors: slots };
  const nodes = (graph as { nodes?: unknown } | undefined)?.nodes;
  const extra = {
    ...(Array.isArray(nodes) ? { graphNodes: nodes.length } : {}),
    ...(raw['linger.stage'] === undefined ? { stageInferred: true } : {}),
  };
  const problem = parentProblem(file, meta);
  const valuesOf = (k: string) => {
    const r = f.tensors.get(k);
    if (!r) return undefined;
    const at = reader(r);
    return Array.from({ length: r.data.byteLength / DTYPE_SIZES[r.dtype] }, (_, i) => at(i));
  };
  return {
    layers: layerQuantSummaries(meta.moduleTree, valuesOf),
    file,
    fileSize: fs.statSync(file).size,
    metadata: { ...rest, ...(torch ? { format: rest.format || 'torch.save (PyTorch zip checkpoint)' } : {}), ...extra },
    otherMetadata,
    tensors,
    optimizer,
    values,
    ...(problem ? { parentProblem: problem } : {}),
  };
}

function fmt(v: number | null): string {
  if (v === null) return '-';
  if (Number.isInteger(v) && Math.abs(v) < 1e9) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(4) : v.toFixed(5).replace(/\.?0+$/, '');
}

function table(head: string[], rows: string[][]): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
}

function bytes(n: number): string {
  return n < 1024 ? `${n} B` : n < 1024 ** 2 ? `${(n / 1024).toFixed(1)} KB` : `${(n / 1024 ** 2).toFixed(1)} MB`;
}

/** The report as text. */
export function formatInspect(r: InspectResult): string {
  const m = r.metadata;
  const lines: string[] = [`${r.file} (${bytes(r.fileSize)})`];
  const kv = (k: string, v: string | undefined) => {
    if (v) lines.push(`  ${k.padEnd(15)}${v}`);
  };
  kv('format', m.format || '(plain safetensors: no linger metadata)');
  kv('stage', m.stage + (m.stageInferred ? ' (inferred from the tensor names)' : ''));
  kv('model', m.model);
  kv('version', m.version);
  kv('created', m.created);
  kv('structure hash', m.structureHash);
  kv('parent', m.parent && (r.parentProblem ? `${m.parent} — warning: ${r.parentProblem}` : m.parent));
  kv(
    'metrics',
    Object.keys(m.metrics).length
      ? Object.entries(m.metrics)
          .map(([k, v]) => `${k}=${v}`)
          .join(', ')
      : undefined,
  );
  kv('input shape', m.inputShape && `[${m.inputShape.join(', ')}]${m.inputDtype ? ` (${m.inputDtype})` : ''}`);
  kv('transforms', m.transforms && (m.transforms.length ? m.transforms.join(' → ') : 'none'));
  kv('graph', m.graphNodes !== undefined ? `${m.graphNodes} nodes (traced)` : undefined);
  if (r.optimizer) {
    const g = (r.optimizer.paramGroups as Record<string, unknown>[] | undefined)?.[0] ?? {};
    const settings = Object.entries(g)
      .filter(([k]) => k !== 'params')
      .map(([k, v]) => `${k}=${v}`)
      .join(', ');
    kv('optimizer', `${r.optimizer.type} (${settings}); ${r.optimizer.tensors.length} state tensors`);
  }
  for (const [k, v] of Object.entries(r.otherMetadata)) kv(k, v.length > 100 ? `${v.slice(0, 97)}...` : v);
  lines.push(`  ${'state'.padEnd(15)}${r.values.toLocaleString('en-US')} values in ${r.tensors.length} tensors`);
  if (m.moduleTree?.length) {
    lines.push('', 'modules:');
    lines.push(
      ...table(
        ['path', 'type', 'params', 'settings'],
        m.moduleTree.map((e) => [
          e.path || '(root)',
          e.type + (e.aheadRelu ? ' (ahead ReLU)' : ''),
          String(e.parameters ?? ''),
          (e.repr ?? '').replace(/\s+/g, ' ').slice(0, 100),
        ]),
      ).map((l) => `  ${l}`),
    );
  }
  if (r.layers.length) {
    const p2 = (v: number | undefined) => (v === undefined ? '-' : `2^${Math.round(Math.log2(v))}`);
    lines.push('', "fixed-point layers (eval scales; a quantized input uses its producer's scale):");
    lines.push(
      ...table(
        ['layer', 'type', 'bits x/w/o', 'scale_x', 'scale_w', 'scale_o', 'weight codes'],
        r.layers.map((l) => [
          l.path,
          l.type,
          `${l.bits.data}/${l.bits.parameter}/${l.bits.out}`,
          p2(l.scales.x),
          p2(l.scales.w),
          p2(l.scales.o),
          l.weightCodes ? `[${l.weightCodes.min}, ${l.weightCodes.max}] (${l.weightCodes.bitsUsed} of ${l.bits.parameter} bits)` : '-',
        ]),
      ).map((x) => `  ${x}`),
    );
  }
  lines.push('', 'tensors:');
  const row = (t: TensorSummary) => [
    t.name,
    t.dtype,
    `[${t.shape.join(', ')}]`,
    fmt(t.min),
    fmt(t.max),
    fmt(t.mean) + (t.nonFinite ? `  (${t.nonFinite} NaN/inf)` : ''),
  ];
  lines.push(
    ...table(['name', 'dtype', 'shape', 'min', 'max', 'mean'], [...r.tensors, ...(r.optimizer?.tensors ?? [])].map(row)).map(
      (l) => `  ${l}`,
    ),
  );
  return lines.join('\n');
}
