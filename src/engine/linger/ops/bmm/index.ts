// linger's BmmInt: F.bmm of quantized tensors when init's `functions` names 'bmm' (linger's
// SetFunctionBmmQuant), one BmmInt per bmm of the traced graph (a child of the calling module, linger's name),
// with its export — thinker: BmmInt(x int8, y int8); qdq: a float MatMul of codes while every
// partial sum stays below 2^24, else MatMulInteger (int32).
import { floorLog2, qmax } from '../../../quant/qvalue';
import { Tensor } from '../../../tensor';
import type { CapturedCall } from '../../../onnx/capture';
import type { ExportContext } from '../../../onnx/export/context';
import { DT, THINKER, PLATFORM } from '../../../onnx/proto';
import { recordedScales } from '../base';
import { defineIntOp, defineTensorOp } from '../registry';
import { BmmInt } from './layer';

export { BmmInt } from './layer';

function bmm(L: ExportContext, c: CapturedCall, m: BmmInt, sx: number, sy: number, so: number, scope: string): void {
  const g = L.g;
  const [x, y] = c.inputs as Tensor[];
  if (L.mode === 'thinker') {
    const z = g.op(
      'BmmInt',
      [L.int8Input(x, sx, m.dataBits, scope), L.int8Input(y, sy, m.dataBits, scope)],
      `${scope}/BmmInt`,
      {
        scale_x: { float: sx },
        scale_y: { float: sy },
        data_bits: m.dataBits,
        scale_o: { float: so },
        o_bits: m.outBits,
        ...PLATFORM,
      },
      THINKER,
    );
    return L.out(c, { name: z, int8Scale: so });
  }
  const cx = L.inputCodes(x, sx, m.dataBits, `${scope}/X`),
    cy = L.inputCodes(y, sy, m.dataBits, `${scope}/Y`);
  const inner = x.shape[2];
  const b = qmax(m.dataBits) + 1;
  let acc: string;
  if (inner * b * b < 2 ** 24)
    acc = g.op('MatMul', [cx, cy], `${scope}/MatMul`); // every partial sum an exact float32 integer
  else if (m.dataBits <= 8) {
    acc = g.op(
      'MatMulInteger',
      [g.op('Cast', [cx], `${scope}/CastInt8X`, { to: DT.INT8 }), g.op('Cast', [cy], `${scope}/CastInt8Y`, { to: DT.INT8 })],
      `${scope}/MatMulInteger`,
    );
  } else {
    throw new Error(
      `a BmmInt with ${m.dataBits}-bit data and an inner dimension of ${inner} can pass 2^24 in float32 and has no int8 MatMulInteger form; the qdq dialect cannot express it exactly (use the thinker dialect)`,
    );
  }
  L.out(c, { name: L.requantize(acc, floorLog2(so) - floorLog2(sx) - floorLog2(sy), m.outBits, so, scope) });
}

const lower = (ctx: ExportContext, c: CapturedCall, m: BmmInt, scope: string) => {
  const s = recordedScales(c);
  bmm(ctx, c, m, s.x!, s.y!, s.o, scope);
};

defineIntOp({ name: 'BmmInt', intClass: BmmInt, lower: { qdq: lower, thinker: lower } });

defineTensorOp({
  op: 'bmm',
  list: 'linger_bmm',
  child: 'function_bmm_',
  flag: 'bmm',
  make: (bits) => new BmmInt(bits),
  // (slots of bmms kept in float are null)
  call: (layer, args) => (layer ? (layer(args[0], args[1]) as Tensor) : undefined),
});
