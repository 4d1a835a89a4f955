// A float or traced model's graph as traceLayers + init and the thinker export will make it, for
// the memory plan (docs/chip-rules.md, "Memory"): a BatchNorm after a conv is folded into it
// (traceLayers), the float input is quantized before the first Int op and every output
// dequantized (the thinker export's Quant / Dequant), ONNX's GRU / LSTM become linger's GRUInt /
// LSTMInt with int8 weights and int32 biases. What init cannot be seen doing from the float graph
// (a Dequant / Quant pair it adds between two layers) is not modelled.
import type { PackEntry, PackGraph, PackNode } from './packgraph';

const CONVS = new Set(['Conv2dInt', 'Conv1dInt', 'ConvTranspose2dInt']);
/** ops the thinker export runs on the float input before its Quant (they are not quantized layers) */
const FLOAT_OK = new Set(['Reshape', 'Transpose', 'Flatten', 'Squeeze', 'Unsqueeze']);

export function asInit(pg: PackGraph): void {
  const users = (v: string) => pg.nodes.filter((n) => n.inputs.includes(v));
  const { entries } = pg;
  // BatchNorm after a conv read only by it: folded (traceLayers' ConvBN fusion)
  for (const bn of [...pg.nodes]) {
    if (bn.op !== 'BatchNormalization') continue;
    const conv = pg.nodes.find((n) => n.outputs.includes(bn.inputs[0]));
    if (conv && CONVS.has(conv.op) && users(bn.inputs[0]).length === 1) {
      entries.delete(bn.inputs[0]);
      conv.outputs = bn.outputs;
      pg.nodes.splice(pg.nodes.indexOf(bn), 1);
    } else {
      // linger's BatchNorm2dInt: an int8 scale and an int32 bias (the running statistics folded in)
      bn.op = 'BatchNorm2dInt';
      bn.inputs = bn.inputs.slice(0, 3);
      const sc = entries.get(bn.inputs[1]);
      if (sc) sc.elem = 1;
    }
  }
  // a MatMul by a weight and the Add of a constant reading it alone: one LinearInt with its bias
  for (const mm of [...pg.nodes]) {
    const u = mm.op === 'LinearInt' && mm.inputs.length === 2 ? users(mm.outputs[0]) : [];
    const b = u.length === 1 && u[0].src.opType === 'Add' ? u[0].inputs.find((v) => entries.get(v)?.kind === 'const') : undefined;
    if (!b) continue;
    entries.delete(mm.outputs[0]);
    mm.inputs.push(b);
    mm.outputs = u[0].outputs;
    pg.nodes.splice(pg.nodes.indexOf(u[0]), 1);
  }
  // a Reshape to [N, rest] of a higher rank: the thinker export writes x.flatten(1) as a Flatten
  // (not in place, no shape constant); the float export cannot tell it from a view(N, -1)
  for (const n of pg.nodes) {
    const x = entries.get(n.inputs[0])?.shape;
    const y = entries.get(n.outputs[0])?.shape;
    if (n.op === 'Reshape' && x && y && x.length > 2 && y.length === 2 && y[0] === x[0]) {
      n.op = 'Flatten';
      n.inputs = [n.inputs[0]];
    }
  }
  // GRU / LSTM: linger's ops, weights [G·H, in] and [G·H, H] int8, the two biases [G·H] int32
  for (const n of pg.nodes) {
    if (n.op !== 'GRU' && n.op !== 'LSTM') continue;
    n.op = `${n.op}Int`;
    const [x, w, r, b] = n.inputs;
    const ins = [x];
    for (const v of [w, r]) {
      const e = entries.get(v);
      if (e) {
        e.shape = [e.shape[0] * e.shape[1], e.shape[2]];
        e.elem = 1;
        ins.push(v);
      }
    }
    const bias = b ? entries.get(b) : undefined;
    if (bias) {
      const half = bias.shape[bias.shape.length - 1] / 2;
      for (const k of ['ih', 'hh']) {
        entries.set(`${b}_${k}`, { name: `${b}_${k}`, shape: [bias.shape[0] * half], elem: 4, kind: 'const' });
        ins.push(`${b}_${k}`);
      }
    }
    n.inputs = ins;
  }
  // the input: float through the ops before the first Int one, then a Quant to int8
  const input = [...entries.values()].find((e) => e.kind === 'input');
  if (input) {
    let v = input.name;
    let u = users(v);
    while (u.length === 1 && FLOAT_OK.has(u[0].op) && u[0].outputs.length === 1) {
      v = u[0].outputs[0];
      const e = entries.get(v);
      if (e) e.elem = input.elem;
      u = users(v);
    }
    if (entries.get(v)!.elem !== 1 && u.length) {
      const q = `${v}_quant`;
      entries.set(q, { ...entries.get(v)!, name: q, elem: 1, kind: 'value' });
      for (const n of u) n.inputs = n.inputs.map((i) => (i === v ? q : i));
      pg.nodes.unshift(node(u[0], 'Quant', [v], [q]));
    }
  }
  // every output: a Dequant to float32
  pg.outputs = pg.outputs.map((o) => {
    const e = entries.get(o);
    const src = pg.nodes.find((n) => n.outputs.includes(o));
    if (!e || !src || e.elem !== 1) return o;
    const d = `${o}_dequant`;
    e.kind = 'value';
    entries.set(d, { ...(e as PackEntry), name: d, elem: 4, kind: 'output' });
    pg.nodes.push(node(src, 'Dequant', [o], [d]));
    return d;
  });
}

function node(like: PackNode, op: string, inputs: string[], outputs: string[]): PackNode {
  return { ...like, name: `${like.name}_${op}`, op, inputs, outputs, group: 1 };
}
