// linger's iqMul: a product of quantized tensors (or of one and a number) in the fixed stage, one
// IQMul per mul of the traced graph (a child of the calling module, linger's name), with its export (docs/linger-ops.md).
import { tf } from '../../../backend/tf';
import * as K from '../../../backend/kernels';
import type { CapturedCall } from '../../../onnx/capture';
import type { ExportContext } from '../../../onnx/export/context';
import { DT, PLATFORM, THINKER } from '../../../onnx/proto';
import { floorLog2, maxAbs, qmax, requantize, trainScale } from '../../../quant/qvalue';
import { Tensor } from '../../../tensor';
import { operandScale } from '../base';
import { codesOf, commonLayout, IQOp, iqOperands } from '../iqOp';
import { defineIntOp, defineTensorOp } from '../registry';

/** The scales an iqMul uses: y's (adjusted so that s_x·s_y ≥ s_z), and its code when y is a number. */
export interface MulScales {
  sx: number;
  sy: number;
  syAdjusted: number;
  sz: number;
  constant?: { value: number; code: number; adjustedCode: number };
}

/** iqMul's scales for x at s_x, y (quantized tensor or number) and output scale s_z (also used by export). */
export function mulScales(sx: number, y: Tensor | number, sz: number, dataBits: number): MulScales {
  const bd = qmax(dataBits);
  const code = (v: number, s: number) => Math.min(bd, Math.max(-bd - 1, Math.floor(v * s + 0.5)));
  let sy: number;
  let c: number | null = null;
  if (typeof y === 'number') {
    c = Math.fround(y);
    sy = trainScale(Math.abs(c), dataBits); // dyn(c): an all-zero constant gets 2^bits
  } else {
    if (y.quantScale === undefined) throw new Error('internal: iqMul operand without a scale');
    sy = y.quantScale;
  }
  // requantize y when the product's scale is below the output's (powers of two: exact comparison)
  const syAdjusted = sx * sy < sz ? sz / sx : sy;
  if (c === null) return { sx, sy, syAdjusted, sz };
  const q = code(c, sy);
  // the forward requantizes the dequantized constant q/s_y; linger's export quantizes c itself (thinker)
  return { sx, sy, syAdjusted, sz, constant: { value: c, code: code(q / sy, syAdjusted), adjustedCode: code(c, syAdjusted) } };
}

/**
 * linger's iqMul: y a quantized tensor or a number (quantized at 2^⌊log2(B/|c|)⌋). If
 * s_x·s_y < s_z, y is requantized at s_y := s_z/s_x (it may saturate); then
 * z = clamp(⌊x_i·y_i·s_z/(s_x·s_y) + 1/2⌋, −B−1, B)/s_z, the product in int32.
 */
export class IQMul extends IQOp {
  /** linger's class name, as its print shows it */
  typeName(): string {
    return 'iqMulLayer';
  }
  /** linger's iqMulLayer also has a `y` buffer (0: its autograd function keeps y elsewhere) */
  quantKeys(): readonly string[] {
    return ['scale_o', 'running_o', 'y'];
  }
  forward(x: Tensor, y: Tensor | number): Tensor {
    const sx = operandScale(this, x);
    if (typeof y !== 'number') operandScale(this, y);
    const bd = qmax(this.dataBits);
    let xr: tf.Tensor, yr: tf.Tensor | number, perm: readonly number[] | null;
    if (typeof y === 'number') {
      const c = Math.fround(y);
      const sy = trainScale(Math.abs(c), this.dataBits);
      xr = x.raw;
      perm = x.perm;
      yr = Math.min(bd, Math.max(-bd - 1, Math.floor(c * sy + 0.5))) / sy; // the quantized constant
    } else {
      ({ x: xr, y: yr, perm } = commonLayout(x, y));
    }
    const rawY = typeof y === 'number' ? Math.fround(y) : yr;
    const sz = this.osr(() => tf.tidy(() => maxAbs(tf.mul(xr, rawY))));
    const sc = mulScales(sx, y, sz, this.dataBits);
    const k = floorLog2(sz) - floorLog2(sx) - floorLog2(sc.syAdjusted); // ≤ 0
    const value = () => {
      const xi = codesOf(xr, sx);
      const yi = sc.constant
        ? tf.scalar(sc.constant.code, 'int32')
        : tf.cast(tf.clipByValue(tf.floor(tf.add(tf.mul(yr as tf.Tensor, sc.syAdjusted), 0.5)), -bd - 1, bd), 'int32');
      return tf.div(tf.cast(requantize(tf.mul(xi, yi), k, this.outBits), 'float32'), sz);
    };
    return new Tensor(this.training ? K.straightThrough(tf.mul(xr, yr), value) : value(), perm, sz);
  }
}

function lowerMul(L: ExportContext, c: CapturedCall, m: IQMul, scope: string): void {
  const { x, sx, sz } = iqOperands(c);
  const g = L.g;
  const y = c.inputs.length > 1 ? (c.inputs[1] as Tensor) : Number(c.args?.[0]);
  if (typeof y === 'number' && !Number.isFinite(y)) throw new Error('iqMul: its number operand was not recorded');
  const s = mulScales(sx, y, sz, m.dataBits);
  if (L.mode === 'thinker') {
    const xi = L.int8Input(x, sx, m.dataBits, scope);
    // linger's graph: y as it is (int8 at its own scale) or the constant quantized at the adjusted
    // scale; scale_y is the adjusted scale either way
    const yi =
      typeof y === 'number'
        ? g.initializer(`${c.target}.y`, [], DT.INT8, [s.constant!.adjustedCode])
        : L.int8Input(y, s.sy, m.dataBits, scope);
    const z = g.op(
      'iqMul',
      [xi, yi],
      `${scope}/iqMul`,
      {
        scale_x: { float: sx },
        scale_y: { float: s.syAdjusted },
        scale_o: { float: sz },
        ...PLATFORM,
      },
      THINKER,
    );
    return L.out(c, { name: z, int8Scale: sz });
  }
  const bd = qmax(m.dataBits);
  const xi = g.op('Mul', [L.floatName(L.value(x), scope), g.scalar(sx)], `${scope}/CodesX`);
  let yi: string;
  if (typeof y === 'number') yi = g.scalar(s.constant!.code);
  else {
    const scaled = g.op('Mul', [L.floatName(L.value(y), scope), g.scalar(s.syAdjusted)], `${scope}/CodesY`);
    yi =
      s.syAdjusted === s.sy
        ? scaled
        : g.op(
            'Clip',
            [
              g.op('Floor', [g.op('Add', [scaled, g.scalar(0.5)], `${scope}/RequantY/Add`)], `${scope}/RequantY/Floor`),
              g.scalar(-bd - 1),
              g.scalar(bd),
            ],
            `${scope}/RequantY/Clip`,
          );
  }
  // |x_i·y_i| ≤ 2^(2·bits − 2): exact in float32
  const prod = g.op('Mul', [xi, yi], `${scope}/Mul`);
  L.out(c, { name: L.requantize(prod, floorLog2(sz) - floorLog2(sx) - floorLog2(s.syAdjusted), m.outBits, sz, scope) });
}

defineIntOp({ name: 'IQMul', intClass: IQMul, lower: { qdq: lowerMul, thinker: lowerMul } });

defineTensorOp({
  op: 'mul',
  list: 'linger_iq',
  child: 'iqmul__default_index_',
  make: (bits) => new IQMul(bits),
  call: (layer, args, _dim, attrs) =>
    layer instanceof IQMul && args.every((a) => a.quantScale !== undefined)
      ? (layer(args[0], args.length > 1 ? args[1] : (attrs?.scalar as number)) as Tensor)
      : undefined,
});
