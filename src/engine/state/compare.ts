// Two checkpoints side by side (the Checkpoints view's "Compare with…"): which keys one has and the
// other not, which moved across stages (under a new name, e.g. traceLayers' conv1.weight →
// conv1.conv.weight), the largest |Δ| of each shared tensor, and the metrics.
import * as path from 'node:path';
import { CheckpointMetadata, loadCheckpoint } from './checkpoint';

/**
 * The BatchNorms folded into a conv at a checkpoint's stage: each EmptyBatchNorm of its module tree
 * and the module its traced graph feeds it from (docs/contract.md#fusion).
 */
export function foldedBns(meta: Pick<CheckpointMetadata, 'graph' | 'moduleTree'>): { conv: string; bn: string }[] {
  const nodes = (meta.graph as { nodes?: { id: number; kind: string; target: string; inputs: { node?: number }[] }[] } | undefined)?.nodes;
  if (!Array.isArray(nodes) || !meta.moduleTree) return [];
  const byId = new Map(nodes.map((n) => [n.id, n]));
  return meta.moduleTree
    .filter((e) => e.type === 'EmptyBatchNorm')
    .flatMap((e) => {
      const n = nodes.find((g) => g.kind === 'module' && g.target === e.path);
      const src = n?.inputs[0]?.node !== undefined ? byId.get(n.inputs[0].node) : undefined;
      return src?.kind === 'module' ? [{ conv: src.target, bn: e.path }] : [];
    });
}
import type { CompareResult } from '../host/protocol';

export async function compareCheckpoints(a: string, b: string): Promise<CompareResult> {
  const [ca, cb] = [await loadCheckpoint(a), await loadCheckpoint(b)];
  const va = new Map(Object.entries(ca.stateDict).map(([k, t]) => [k, { shape: t.shape, values: t.dataSync() }]));
  const vb = new Map(Object.entries(cb.stateDict).map(([k, t]) => [k, { shape: t.shape, values: t.dataSync() }]));
  const onlyA = [...va.keys()].filter((k) => !vb.has(k));
  const onlyB = [...vb.keys()].filter((k) => !va.has(k));
  // moved: a key of A under a new name in B (a stage moved it: conv1.weight → conv1.conv.weight,
  // bn1.running_mean → conv1.bn.running_mean): the same last name and shape; among several such
  // keys, the one whose values are closest (training between the saves changes them a little)
  const maxAbs = (x: ArrayLike<number>, y: ArrayLike<number>) => {
    let m = 0;
    for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - y[i]));
    return m;
  };
  const leaf = (k: string) => k.slice(k.lastIndexOf('.') + 1);
  const free = new Set(onlyB);
  const moved: CompareResult['moved'] = [];
  for (const k of onlyA) {
    const x = va.get(k)!;
    let best: { key: string; d: number } | undefined;
    for (const c of free) {
      const y = vb.get(c)!;
      if (leaf(c) !== leaf(k) || y.shape.join() !== x.shape.join()) continue;
      const d = maxAbs(x.values, y.values);
      if (!best || d < best.d) best = { key: c, d };
    }
    if (best) {
      free.delete(best.key);
      moved.push({ from: k, to: best.key, maxAbs: best.d });
    }
  }
  const movedFrom = new Set(moved.map((m) => m.from)),
    movedTo = new Set(moved.map((m) => m.to));
  const changed: CompareResult['changed'] = [];
  const reshaped: CompareResult['reshaped'] = [];
  for (const [k, x] of va) {
    const y = vb.get(k);
    if (!y) continue;
    if (x.shape.join() !== y.shape.join()) {
      reshaped.push({ key: k, a: x.shape, b: y.shape });
      continue;
    }
    changed.push({ key: k, maxAbs: maxAbs(x.values, y.values) });
  }
  const names = [...new Set([...Object.keys(ca.metadata.metrics), ...Object.keys(cb.metadata.metrics)])];
  const metrics = names.map((name) => ({ name, a: ca.metadata.metrics[name], b: cb.metadata.metrics[name] }));
  const folded = [
    ...foldedBns(ca.metadata).map((f) => ({ ...f, in: 'a' as const })),
    ...foldedBns(cb.metadata).map((f) => ({ ...f, in: 'b' as const })),
  ];
  const r: Omit<CompareResult, 'text'> = {
    a,
    b,
    folded,
    stages: [ca.metadata.stage, cb.metadata.stage],
    added: onlyB.filter((k) => !movedTo.has(k)),
    removed: onlyA.filter((k) => !movedFrom.has(k)),
    moved,
    changed,
    reshaped,
    metrics,
  };
  return { ...r, text: formatComparison(r) };
}

function num(v: number | undefined): string {
  return v === undefined ? '-' : Number.isInteger(v) ? String(v) : v.toFixed(5);
}

export function formatComparison(r: Omit<CompareResult, 'text'>): string {
  const A = path.basename(r.a),
    B = path.basename(r.b);
  const lines = [`A: ${r.a} (${r.stages[0]})`, `B: ${r.b} (${r.stages[1]})`, ''];
  if (r.metrics.length) {
    lines.push('metrics:');
    for (const m of r.metrics) {
      const d = m.a !== undefined && m.b !== undefined ? `  Δ ${m.b - m.a >= 0 ? '+' : ''}${(m.b - m.a).toFixed(5)}` : '';
      lines.push(`  ${m.name.padEnd(12)} ${num(m.a).padStart(10)} → ${num(m.b).padStart(10)}${d}`);
    }
    lines.push('');
  }
  const section = (title: string, rows: string[]) => {
    lines.push(`${title} (${rows.length}):`);
    lines.push(...(rows.length ? rows.map((x) => `  ${x}`) : ['  none']));
    lines.push('');
  };
  const delta = (d: number) => (d === 0 ? '0 (equal)' : d.toExponential(3));
  // a conv's weight and bias that took a BN in: their values moved by the fold, not by training
  const foldNote = (key: string) => {
    const f = r.folded.find((x) => key === `${x.conv}.weight` || key === `${x.conv}.bias`);
    return f ? `  (${f.bn} folded into ${f.conv} in ${f.in === 'a' ? A : B})` : '';
  };
  if (r.folded.length) {
    const where = (x: 'a' | 'b') => r.folded.filter((f) => f.in === x).map((f) => `${f.bn} → ${f.conv}`);
    if (where('a').length) lines.push(`BatchNorm folded in ${A}: ${where('a').join(', ')}`);
    if (where('b').length) lines.push(`BatchNorm folded in ${B}: ${where('b').join(', ')}`);
    lines.push("  (a folded conv's weight and bias hold the BN's scale and shift: they differ from the unfolded ones by design)", '');
  }
  section(
    `moved to another name (${A} → ${B}): max |Δ|`,
    r.moved.map((m) => `${m.from} → ${m.to}  ${delta(m.maxAbs)}${foldNote(m.to) || foldNote(m.from)}`),
  );
  section(`only in ${B}`, r.added);
  section(`only in ${A}`, r.removed);
  if (r.reshaped.length)
    section(
      'in both, different shapes',
      r.reshaped.map((x) => `${x.key}: [${x.a.join(', ')}] → [${x.b.join(', ')}]`),
    );
  const w = Math.max(3, ...r.changed.map((c) => c.key.length));
  section(
    'in both: max |Δ|',
    [...r.changed].sort((x, y) => y.maxAbs - x.maxAbs).map((c) => `${c.key.padEnd(w)}  ${delta(c.maxAbs)}${foldNote(c.key)}`),
  );
  return lines.join('\n').trimEnd() + '\n';
}
