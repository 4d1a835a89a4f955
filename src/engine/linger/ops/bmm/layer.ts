// linger's BmmInt: F.bmm of quantized tensors (docs/linger-ops.md).
import { tf } from '../../../backend/tf';
import { Buffer, Module, ModuleError, ShapeError } from '../../../nn/module';
import { EXACT, fakeQuant, floorLog2, requantize } from '../../../quant/qvalue';
import { Tensor } from '../../../tensor';
import { codesAt, fakeQuantLogical, inputScale, outputScale, QuantBits, quantized } from '../base';

const clamp = (v: number, lo: number, hi: number) => (v < lo ? lo : v > hi ? hi : v);
const I32 = 2 ** 31;

const BMM_KEYS = ['running_x', 'running_y', 'running_o', 'scale_x', 'scale_y', 'scale_o'] as const;

/**
 * Σ_j qx[b,i,j]·qy[b,j,k] as int32, exactly: float32 matmuls over chunks of the inner dimension
 * whose partial sums stay below 2^24 (bounded by the largest codes), added in int32; where one
 * product can pass 2^24 (more than 12-bit data), on the host (clamped to int32, a 32-bit accumulator).
 */
function exactBmm(qx: tf.Tensor3D, qy: tf.Tensor3D): tf.Tensor {
  const mx = tf.tidy(() => tf.max(tf.abs(qx)).dataSync()[0]),
    my = tf.tidy(() => tf.max(tf.abs(qy)).dataSync()[0]);
  const [b, n, m] = qx.shape,
    p = qy.shape[2];
  const per = mx * my;
  if (per * m < EXACT) return tf.cast(tf.round(tf.matMul(qx, qy)), 'int32');
  const chunk = Math.floor((EXACT - 1) / per);
  if (chunk >= 1) {
    let acc: tf.Tensor | null = null;
    for (let c0 = 0; c0 < m; c0 += chunk) {
      const c = Math.min(chunk, m - c0);
      const part = tf.cast(tf.round(tf.matMul(tf.slice(qx, [0, 0, c0], [b, n, c]), tf.slice(qy, [0, c0, 0], [b, c, p]))), 'int32');
      acc = acc ? tf.add(acc, part) : part;
    }
    return acc!;
  }
  const xv = qx.dataSync(),
    yv = qy.dataSync();
  const out = new Int32Array(b * n * p);
  for (let s = 0; s < b; s++)
    for (let i = 0; i < n; i++)
      for (let k = 0; k < p; k++) {
        let acc = 0;
        for (let j = 0; j < m; j++) acc += xv[(s * n + i) * m + j] * yv[(s * m + j) * p + k];
        out[(s * n + i) * p + k] = clamp(acc, -I32, I32 - 1);
      }
  return tf.tensor(out, [b, n, p], 'int32');
}

/**
 * linger's BmmInt (torch.bmm after SetFunctionBmmQuant(True)): both operands quantized to
 * data_bits (an IQTensor keeps its scale), z = bmm(q_x, q_y)/(s_x·s_y), requantized to o_bits.
 */
export class BmmInt extends quantized(Module) {
  quantKeys(): readonly string[] {
    return BMM_KEYS;
  }
  /** linger's BmmInt prints no settings */
  extraRepr(): string {
    return '';
  }
  declare running_x: Buffer;
  declare running_y: Buffer;
  declare running_o: Buffer;
  declare scale_x: Buffer;
  declare scale_y: Buffer;
  declare scale_o: Buffer;

  constructor(bits: QuantBits) {
    super();
    Object.assign(this, bits);
    this.addQuantBuffers();
  }

  forward(x: Tensor, y: Tensor): Tensor {
    const [sa, sb] = [x.shape, y.shape];
    if (sa.length !== 3 || sb.length !== 3 || sa[0] !== sb[0] || sa[2] !== sb[1]) {
      throw new ShapeError(this, `bmm: expected [b, n, m] and [b, m, p], got [${sa.join(', ')}] and [${sb.join(', ')}]`);
    }
    if (x.dtype !== 'float32' || y.dtype !== 'float32') throw new ModuleError(this, 'bmm: expected float32 operands');
    // scale_x/scale_y as linger's BmmInt fills them: an operand's carried scale always, its own only
    // while exporting; scale_o only while exporting (docs/fixed-point.md#conformance-with-linger-111)
    const sx = inputScale(this, x, 'running_x', 'scale_x'),
      sy = inputScale(this, y, 'running_y', 'scale_y');
    if (this.training) {
      const z = tf.matMul(fakeQuantLogical(x, sx, this.dataBits), fakeQuantLogical(y, sy, this.dataBits));
      const so = outputScale(this, z);
      return new Tensor(fakeQuant(z, so, this.outBits), null, so);
    }
    const so = outputScale(this, null);
    const acc = exactBmm(codesAt(x, sx, this.dataBits) as tf.Tensor3D, codesAt(y, sy, this.dataBits) as tf.Tensor3D);
    const q = requantize(acc, floorLog2(so) - floorLog2(sx) - floorLog2(sy), this.outBits);
    return new Tensor(tf.div(tf.cast(q, 'float32'), so), null, so);
  }
}
