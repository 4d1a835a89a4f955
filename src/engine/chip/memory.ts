// The memory a packed model needs (docs/chip-rules.md, "memory"): each layer's activation and
// weight bytes after thinker's alignment, and the peak of a plan that keeps a value from the node
// writing it to the last node reading it, as tpacker's planner does.
import type { ChipGraph } from './graph';
import type { ChipPlatform } from './platforms';

export interface ChipLayerMemory {
  layer: string;
  op: string;
  /** bytes of the node's output(s) */
  activationBytes: number;
  /** bytes of its weights and biases, as tpacker packs them */
  weightBytes: number;
}

export interface ChipMemory {
  layers: ChipLayerMemory[];
  /**
   * the largest sum of live activations at any node: a lower bound of the SRAM (SHARE_MEM)
   * tpacker plans, which adds each op's workspace (ops/*.py get_workspace; not modelled yet)
   */
  peakActivationBytes: number;
  /** all weights and biases as tpacker packs them (its PSRAM plan; within 1% on the corpus' networks) */
  weightBytes: number;
  sramBytes: number;
  psramBytes: number;
}

const ALIGN = (x: number, a: number) => Math.ceil(x / a) * a;
const prod = (s: number[]) => s.reduce((a, b) => a * b, 1);

export function planMemory(g: ChipGraph, p: ChipPlatform): ChipMemory {
  const size = (v: string) => {
    const s = g.shapes.get(v);
    return s ? prod(s) * (g.bytes.get(v) ?? 1) : 0;
  };
  const lastUse = new Map<string, number>();
  g.nodes.forEach((n, i) => n.inputs.forEach((v) => lastUse.set(v, i)));
  const layers: ChipLayerMemory[] = [];
  let live = new Map<string, number>([[g.input, size(g.input)]]);
  let peak = size(g.input);
  g.nodes.forEach((n, i) => {
    let wb = 0;
    for (const v of n.inputs.slice(1)) {
      const init = g.initializers.get(v);
      if (!init) continue;
      // a float or traced model's weights become int8 codes, its biases int32 (init)
      const eb = g.dialect === 'thinker' ? init.bytes : v === n.inputs[1] ? 1 : 4;
      // tpacker pads a conv's output channels to 2 (16 depthwise) and its input channels to 8
      if (v === n.inputs[1] && n.weight && n.kernel && init.dims.length >= 3) {
        const [co, ci] = init.dims;
        const dw = ci === 1 && n.group === co;
        wb += (dw ? ALIGN(co, 16) * ci : ALIGN(co, 2) * ALIGN(ci, 8)) * prod(n.kernel) * eb;
      } else wb += prod(init.dims) * eb;
    }
    const ab = n.outputs.reduce((a, o) => a + size(o), 0);
    for (const o of n.outputs) live.set(o, size(o));
    peak = Math.max(
      peak,
      [...live.values()].reduce((a, b) => a + b, 0),
    );
    live = new Map([...live].filter(([v]) => (lastUse.get(v) ?? -1) > i));
    if (n.op !== 'other' || wb)
      layers.push({ layer: n.layer, op: n.op === 'other' ? n.opType : n.op, activationBytes: ab, weightBytes: wb });
  });
  return {
    layers,
    peakActivationBytes: peak,
    weightBytes: layers.reduce((a, l) => a + l.weightBytes, 0),
    sramBytes: p.sramBytes,
    psramBytes: p.psramBytes,
  };
}
