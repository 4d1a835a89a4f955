// The scratch memory each op asks tpacker for (docs/chip-rules.md, "Memory"): each op's
// get_workspace of thinker v1.1.0 (thinker/resource_packer/ops/*.py), restated for the case
// tpacker binds on venus — every op on the LUNA core, activations in SHARE_MEM, weights in PSRAM
// (thinker/combine.py:60-94) — and the two DMA buffers the weights are fetched into
// (resource_packer/memory.py:100-143). undefined: the op asks for none (an empty list); 0 is a
// request of no bytes, which still counts for the workspace's lifetime (memory.py:55-98).
import { nbytes, type PackGraph, type PackNode } from './packgraph';

const A = (x: number, a: number) => Math.ceil(x / a) * a;
const prod = (s: number[]) => s.reduce((a, b) => a * b, 1);

/** rows of an 8·stride-wide tile times channels to 8 times height: the input a LUNA conv or pool reads */
const dataSize = (w: number, sw: number, c: number, h: number) => Math.ceil(w / (8 * sw)) * 8 * sw * A(c, 8) * h;

/** the output rows of a split-by-height conv, as tpacker computes them (float division as in Python) */
function splitOut(outBytes: number, h: number, kh: number, sh: number, padT: number, padB: number, limitWithoutH: number): number {
  const ouH = Math.floor((h + padT + padB - kh) / sh) + 1;
  let num = 1;
  let inH = h;
  while (inH * limitWithoutH > 65536 || ouH % num !== 0) {
    num += 1;
    inH = (ouH * sh) / num + kh - sh;
    if (num > 4096) break;
  }
  return Math.ceil(outBytes / num);
}

export function workspaceOf(pg: PackGraph, n: PackNode): number | undefined {
  const r = request(pg, n);
  // a shape not propagated (an op graph.ts does not infer) asks for nothing it can be charged
  return r === undefined || !Number.isFinite(r) ? undefined : r;
}

function request(pg: PackGraph, n: PackNode): number | undefined {
  const e = (v: string) => pg.entries.get(v);
  const x = e(n.inputs[0]);
  const y = e(n.outputs[0]);
  if (!x || !y) return undefined;
  const xs = x.shape;
  const out = nbytes(y);
  const a = n.src.attrs;
  const w = e(n.inputs[1]);
  // the weight as packed: get_workspace runs after pack_params, so kernel_c is the packed dim 1
  const ws = w?.packed ?? w?.shape ?? [];
  switch (n.op) {
    case 'Conv2dInt': {
      // ops/Conv2dInt.py:150-274
      const [kn, kc] = ws;
      const kh = n.src.kernel?.[0] ?? 1;
      const [sh, sw] = n.src.strides ?? [1, 1];
      const pads = n.src.pads ?? [0, 0, 0, 0];
      const [h, wd] = [xs[2], xs[3]];
      const ds = dataSize(wd, sw, xs[1], h);
      const dw = kc === 1 && (n.group === kn || A(n.group, 16) === kn);
      if (dw) {
        if (ds <= 65536) return 0;
        // the input split by height until a slice fits 64 KB (ops/Conv2dInt.py:191-205)
        const ouH = y.shape[2];
        let num = 1;
        let inH = h;
        while (inH * (ds / h) > 65536 || ouH % num !== 0) {
          num += 1;
          inH = (ouH * sh) / num + kh - sh;
          if (num > h || num > ouH) break;
        }
        return Math.max(out, Math.floor(xs[1] * inH * wd));
      }
      if (n.group !== 1) return Math.max(out, 65536);
      if (h * wd >= 64 * 1024) return Math.max(splitOut(out, h, kh, sh, pads[2], pads[3], dataSize(wd, sw, kc, 1)), 65536);
      return undefined;
    }
    case 'Conv1dInt': {
      // ops/Conv1dInt.py:137-215
      const [kn, kc] = ws;
      const k = n.src.kernel?.[0] ?? 1;
      const s = n.src.strides?.[0] ?? 1;
      const pads = n.src.pads ?? [0, 0];
      const h = xs[2];
      const ds = dataSize(1, 1, kc, h);
      if (kc === 1 && (n.group === kn || A(n.group, 16) === kn)) return ds > 65536 ? Math.max(out, 65536) : 0;
      if (n.group !== 1) return ds > 65536 ? Math.max(out, 65536) : 0;
      if (ds > 65536 && h >= 64 * 1024) return Math.max(splitOut(out, h, k, s, 0, 0, dataSize(1, 1, kc, 1)), 65536);
      if (k > 5) {
        const bias = n.inputs[2] ? e(n.inputs[2]) : undefined;
        const line = kc * (h + pads[0] + pads[1]);
        return Math.min(y.shape[2] * kc * k, 65536) + (bias ? Math.max(out * bias.elem, line) : line);
      }
      return undefined;
    }
    case 'ConvTranspose2dInt': {
      // ops/ConvTranspose2dInt.py:141-146, ops/utils/infer_workspace.py:43-84 (NCHW): the column
      // buffer M·N plus both gemm operands, M = the packed kernel, N = the input's pixels, K = outputs / group
      const m = prod(ws.slice(1));
      const nn = prod(xs.slice(2));
      const kk = ws[0] / n.group;
      return Math.trunc(x.elem * (m * nn + (m > 1 ? m * kk : 0) + (nn > 1 ? kk * nn : 0)));
    }
    case 'MaxPool': {
      // ops/Pool.py:81-116
      const sw = n.src.strides?.[1] ?? 1;
      return dataSize(xs[3], sw, xs[1], xs[2]) > 65536 ? Math.max(60 * 1024, out) : out;
    }
    case 'AvgPool2dInt': {
      // ops/Pool.py:142-177
      const sw = n.src.strides?.[1] ?? 1;
      return dataSize(xs[3], sw, xs[1], xs[2]) > 65536 ? Math.floor(out / xs[1]) * 2 : out * 2;
    }
    case 'LinearInt': {
      // the int32 accumulator of the output when there is a bias (ops/LinearInt.py:125-155)
      const bias = n.inputs[2] ? e(n.inputs[2]) : undefined;
      return bias ? out * bias.elem : 0;
    }
    case 'GRUInt':
    case 'LSTMInt': {
      // 4 bytes × 3 (GRU) or × 4 (LSTM) gates of the hidden weights' packed width (ops/GRUInt.py:89-97, LstmInt.py:119-124)
      const hh = e(n.inputs[2]);
      const width = (hh?.packed ?? hh?.shape ?? [0, 0])[1];
      return n.op === 'GRUInt' ? width * 4 * 3 : width * 4 * 4;
    }
    case 'iqAdd': {
      // an input whose scale is not the output's is rescaled into the workspace first (ops/iqAdd.py:12-31)
      // (a float model's add has no scales yet: one input is taken as rescaled — the output's
      // scale usually follows the input of the larger range)
      if (!a.has('scale_o')) return nbytes(x);
      const so = a.float('scale_o', 1);
      return (a.float('scale_x', 1) !== so ? nbytes(x) : 0) + (a.float('scale_y', 1) !== so ? nbytes(x) : 0);
    }
    case 'iqCat':
      // in SHARE_MEM nothing is rescaled through it, but it asks (ops/iqCat.py:76-101)
      return 0;
    case 'iqMul': {
      // ops/iqMul.py:12-26: a [N, C, H, W] times a [N, C, 1, 1]
      const z = e(n.inputs[1])?.shape ?? [];
      const bc =
        xs.length === 4 && z.length === 4 && xs[0] === z[0] && xs[1] === z[1] && (xs[2] > 1 || xs[3] > 1) && z[2] === 1 && z[3] === 1;
      return bc ? xs[2] * xs[3] + xs[1] * xs[2] * xs[3] : 0;
    }
    case 'BatchNorm2dInt':
      return xs[2] * xs[3] * 4; // ops/BatchNorm2dInt.py:48-55
    case 'LayerNormInt': {
      // ops/LayerNormInt.py:55-63
      const last = e(n.inputs[n.inputs.length - 1]);
      return prod(w?.shape ?? []) * 4 * (last?.elem ?? 1);
    }
    case 'SoftmaxInt':
    case 'LogSoftmaxInt': {
      // int32 × twice the axis (ops/SoftmaxInt.py:22-26, LogSoftmaxInt.py:46-50)
      const ax = a.int('dim', -1);
      return xs[ax < 0 ? ax + xs.length : ax] * 2 * 4;
    }
    default:
      return undefined; // the base operator's empty list (ops/base/Operator.py:71-72)
  }
}

/** the weights a LUNA op fetches from PSRAM per call: its constants' bytes (memory.py:100-129) */
export function dmaBytes(pg: PackGraph, n: PackNode): number {
  if (!['Conv2dInt', 'ConvTranspose2dInt', 'LinearInt', 'LSTMInt', 'Conv1dInt', 'LayerNormInt'].includes(n.op)) return 0;
  return n.inputs.reduce((s, v) => {
    const c = pg.entries.get(v);
    return c?.kind === 'const' ? s + nbytes(c) : s;
  }, 0);
}
