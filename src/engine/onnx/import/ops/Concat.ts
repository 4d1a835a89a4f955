// Concat: the engine's cat on tensors (constant parts made once at build), plain JS on constants
// (the shapes PyTorch builds for view/reshape).
import * as F from '../../../nn/functional';
import { constValue, normAxis, sizeOf } from '../constEval';
import { def } from '../registry';
import { asTensor } from '../values';

def({
  op: 'Concat',
  tensorConsts: true,
  run: ({ n, ins, opset }) => {
    const ts = ins.map((v) => asTensor(v, n.what));
    return [F.cat(ts, n.attrs.int('axis', opset >= 4 ? 0 : 1))];
  },
  fold: ({ n, ins, need }) => {
    const { what, attrs } = n;
    const parts = ins.map((_, i) => need(i));
    if (!parts.length) throw new Error(`${what}: no inputs`);
    const r = parts[0].dims.length;
    const axis = normAxis(attrs.int('axis', 0), r, what);
    for (const p of parts) {
      if (p.dims.length !== r || p.dims.some((d, i) => i !== axis && d !== parts[0].dims[i])) {
        throw new Error(`${what}: shapes [${parts[0].dims.join(', ')}] and [${p.dims.join(', ')}] do not concatenate on axis ${axis}`);
      }
    }
    const dims = [...parts[0].dims];
    dims[axis] = parts.reduce((a, p) => a + p.dims[axis], 0);
    const outer = sizeOf(dims.slice(0, axis));
    const out: number[] = [];
    for (let o = 0; o < outer; o++) {
      for (const p of parts) {
        const chunk = sizeOf(p.dims.slice(axis));
        for (let k = 0; k < chunk; k++) out.push(p.data[o * chunk + k]);
      }
    }
    const dtype = parts.every((p) => p.dtype === 'int') ? 'int' : 'float';
    return [constValue(dims, dtype, dtype === 'float' ? Float32Array.from(out) : out)];
  },
});
