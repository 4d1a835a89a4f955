// The memory a packed model needs (docs/chip-rules.md, "Memory"): tpacker's own plan, restated.
// The model's graph becomes the graph tpacker packs (packgraph.ts: fused activations, split convs,
// packed weights); each activation lives from the node writing it to the last node reading it, the
// ops' workspace and the two DMA buffers of fetched weights join them (workspace.ts), and the
// placement tpacker keeps decides the SHARE_MEM total (slots.ts). Weights are tpacker's PSRAM.
import type { ChipGraph } from './graph';
import { nbytes, packGraph } from './packgraph';
import type { ChipPlatform } from './platforms';
import { planSlots, shareLifetimes, type SlotPlan, type SlotTensor } from './slots';
import { dmaBytes, workspaceOf } from './workspace';

export interface ChipLayerMemory {
  layer: string;
  op: string;
  /** bytes of the node's output(s), 16-byte aligned as tpacker counts them */
  activationBytes: number;
  /** bytes of its weights and biases, as tpacker packs them */
  weightBytes: number;
  /** the scratch memory the op asks for (its get_workspace), if any */
  workspaceBytes?: number;
}

export interface ChipMemory {
  layers: ChipLayerMemory[];
  /** the largest sum of live activations at any node (no workspace, no DMA buffers) */
  peakActivationBytes: number;
  /** all constants as tpacker packs them: its PSRAM need */
  weightBytes: number;
  /** the SHARE_MEM tpacker plans: activations, the largest workspace and the DMA buffers, in slots */
  sramPeakBytes: number;
  /** the largest workspace (one buffer, shared by the ops asking for one) */
  workspaceBytes: number;
  /** the two DMA buffers weights are fetched into */
  dmaBytes: [number, number];
  /** the placement kept (of greedy by size, by breadth, by order) and its slots */
  plan: SlotPlan;
  /**
   * a LinearInt weighs over 32 KB: over 640 KB, tpacker plans again with such Linears split
   * (thinker v1.1.0 combine.py:97-153, graph_optimizer/op_split.py:625-640), which is not modelled
   */
  linearRetry: boolean;
  /** how the model is packed: 'float' (Quant / Dequant kept, tpacker -s Remove_QuantDequant) or 'int' (tpacker's default) */
  io: 'float' | 'int';
  sramBytes: number;
  psramBytes: number;
}

/** the (de)quantizing nodes at the model's edges: not layers */
const QUANT = new Set(['Quant', 'Dequant', 'QuantizeLinear', 'DequantizeLinear']);

export function planMemory(g: ChipGraph, p: ChipPlatform, io: 'float' | 'int' = 'float'): ChipMemory {
  const pg = packGraph(g, io);
  const N = pg.nodes.length;
  const names = [...pg.entries.keys()];
  const ts: SlotTensor[] = [];
  const ix = new Map<string, number>();
  const lastUse = new Map<string, number>();
  for (const n of pg.nodes) for (const v of n.inputs) lastUse.set(v, Math.max(lastUse.get(v) ?? -1, n.index));
  let weights = 0;
  for (const name of names) {
    const e = pg.entries.get(name)!;
    if (e.kind === 'const') {
      weights += nbytes(e);
      continue;
    }
    // memory.py:154-178: the input from 0, an output to the last node, others to their last reader
    const begin = e.kind === 'input' ? 0 : (e.src?.index ?? 0);
    const end = e.kind === 'output' ? N - 1 : (lastUse.get(name) ?? begin);
    // an in-place op's output shares its input's memory (ops/Reshape.py:44, Squeeze.py:47, Unsqueeze.py:59)
    const inplace = e.src && ['Reshape', 'Squeeze', 'Unsqueeze'].includes(e.src.op) ? ix.get(e.src.inputs[0]) : undefined;
    ix.set(name, ts.length);
    ts.push({ name, bytes: nbytes(e), begin, end, share: inplace ?? ts.length });
  }
  const layers = pg.nodes.map((n) => ({
    layer: n.layer,
    op: n.op,
    activationBytes: n.outputs.reduce((a, o) => a + (pg.entries.has(o) ? nbytes(pg.entries.get(o)!) : 0), 0),
    weightBytes: n.inputs.reduce((a, v) => a + (pg.entries.get(v)?.kind === 'const' ? nbytes(pg.entries.get(v)!) : 0), 0),
    workspaceBytes: workspaceOf(pg, n),
  }));
  // one workspace of the largest request, alive from the first op asking to the last (memory.py:55-98)
  const asking = layers.map((l, i) => (l.workspaceBytes === undefined ? -1 : i)).filter((i) => i >= 0);
  const workspace = Math.max(0, ...asking.map((i) => Math.ceil(layers[i].workspaceBytes! / 16) * 16));
  if (asking.length) ts.push({ name: 'workspace', bytes: workspace, begin: asking[0], end: asking[asking.length - 1], share: ts.length });
  // the weighted ops fetch into buffer 1 and 2 in turn; each the largest it holds, alive throughout (memory.py:100-143)
  const dma: [number, number] = [0, 0];
  let turn = 0;
  for (const n of pg.nodes) {
    const d = dmaBytes(pg, n);
    if (!d) continue;
    dma[turn % 2] = Math.max(dma[turn % 2], d);
    turn++;
  }
  for (const [i, d] of dma.entries())
    if (turn > i) ts.push({ name: `dma_buffer${i + 1}`, bytes: d, begin: 0, end: N - 1, share: ts.length });
  shareLifetimes(ts);
  // the peak of activations alone (no workspace, no DMA buffer; an in-place output counted once): a lower bound of the plan
  const own = ts.filter((t, i) => t.share === i && !t.name.startsWith('dma_buffer') && t.name !== 'workspace');
  let peak = 0;
  for (let i = 0; i < N; i++)
    peak = Math.max(
      peak,
      own.reduce((a, t) => a + (t.begin <= i && i <= t.end ? t.bytes : 0), 0),
    );
  const { best } = planSlots(ts, N);
  return {
    layers: layers.filter((l) => !QUANT.has(l.op)),
    peakActivationBytes: peak,
    weightBytes: weights,
    sramPeakBytes: best.total,
    workspaceBytes: workspace,
    dmaBytes: dma,
    plan: best,
    io,
    linearRetry: pg.nodes.some(
      (n) => n.op === 'LinearInt' && pg.entries.has(n.inputs[1]) && nbytes(pg.entries.get(n.inputs[1])!) > 32 * 1024,
    ),
    sramBytes: p.sramBytes,
    psramBytes: p.psramBytes,
  };
}
