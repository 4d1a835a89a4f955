// Pad: only the zero constant padding PyTorch exports, and only where nothing remains of it — a Pad
// of nothing, or the symmetric spatial padding of the AveragePool it feeds (fused into the pool's
// padding: ops/AveragePool.ts). Either way its step passes its input on.
import { intsOf, scalarOf } from '../constEval';
import { def } from '../registry';

def({
  op: 'Pad',
  plan: (n, ctx) => {
    const { consts, opset } = ctx;
    const mode = n.attrs.string('mode', 'constant');
    const pads =
      opset >= 11
        ? n.inputs[1] && consts.has(n.inputs[1])
          ? intsOf(consts.get(n.inputs[1])!, `${n.what} pads`)
          : null
        : (n.attrs.ints('pads') ?? null);
    const value =
      opset >= 11
        ? n.inputs[2] && consts.has(n.inputs[2])
          ? scalarOf(consts.get(n.inputs[2])!, `${n.what} value`)
          : 0
        : n.attrs.float('value', 0);
    if (!pads) throw new Error(`${n.what}: Pad with computed pads is not supported`);
    if (mode !== 'constant' || value !== 0) throw new Error(`${n.what}: only zero padding is supported (mode ${mode}, value ${value})`);
    if (pads.every((p) => p === 0)) {
      ctx.absorb(n, true);
      return;
    }
    const users = ctx.consumers.get(n.outputs[0]) ?? [];
    const pool = users[0];
    const r = pads.length / 2;
    const ok =
      users.length === 1 &&
      pool.op === 'AveragePool' &&
      r === 4 &&
      pads[0] === 0 &&
      pads[1] === 0 &&
      pads[4] === 0 &&
      pads[5] === 0 &&
      pads[2] === pads[6] &&
      pads[3] === pads[7] &&
      !ctx.isOutput(n.outputs[0]);
    if (!ok)
      throw new Error(`${n.what}: padding [${pads.join(', ')}] is supported only as the symmetric spatial zero padding of an average pool`);
    ctx.absorb(n, true);
    pool.fusedPad = [pads[2], pads[3]];
  },
});
