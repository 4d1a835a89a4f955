// tpacker's checks, restated (docs/chip-rules.md): each rule reads a ChipNode (graph.ts) and a
// platform table (platforms.ts) and says what tpacker would stop with, on which layer, and what
// to change. The cited lines are thinker v1.1.0's thinker/resource_packer/ops/*.py.
import type { ChipGraph, ChipNode } from './graph';
import type { ChipPlatform } from './platforms';

export type Severity = 'error' | 'warning';

/** One thing the chip's toolchain refuses (error) or runs other than the user expects (warning). */
export interface Finding {
  /** the module path of the layer ('features.0'); '' for an op of the model's own forward */
  layer: string;
  /** the Int op the layer is (or becomes after traceLayers + init) */
  op: string;
  /** a short id: 'conv-kernel', 'pool-stride', … (docs/chip-rules.md lists them) */
  rule: string;
  message: string;
  /** what the layer has */
  value: number | number[] | string;
  /** what the platform accepts */
  limit: number | number[] | string;
  severity: Severity;
  suggestion?: string;
  /** the check restated, as file:line of the toolchain (or of this project when the export refuses) */
  source: string;
}

const ALIGN = (x: number, a: number) => Math.ceil(x / a) * a;
const list = (v: number[]) => (v.length > 1 && v.every((x) => x === v[0]) ? v[0] : v);
const OPS = 'thinker/resource_packer/ops';

function finding(n: ChipNode, rule: string, f: Omit<Finding, 'layer' | 'op' | 'rule' | 'severity'> & { severity?: Severity }): Finding {
  return { layer: n.layer, op: n.op, rule, severity: f.severity ?? 'error', ...f };
}

/** pads as [top, bottom] per spatial axis: ONNX writes [begin…, end…]. */
function padsPerAxis(n: ChipNode): number[][] {
  const sp = n.kernel!.length;
  return n.kernel!.map((_, i) => [n.pads![i], n.pads![i + sp]]);
}

/** Kernel, pads, strides (and dilation) of a conv or pool against the platform's sets. */
function windowRules(n: ChipNode, p: ChipPlatform, file: string, lines: { kernel?: number; pads: number; strides: number }): Finding[] {
  const out: Finding[] = [];
  const k = n.kernel!,
    s = n.strides!,
    d = n.dilations!;
  const kind = n.op === 'MaxPool' || n.op === 'AvgPool2dInt' ? 'pool' : 'conv';
  const dilated = d.some((x) => x !== 1);
  if (lines.kernel !== undefined) {
    const eff = k.map((x, i) => (x - 1) * d[i] + 1);
    const bad = dilated && p.dilatedKernelMax !== null ? eff.some((x) => x > p.dilatedKernelMax!) : k.some((x) => !p.kernels.includes(x));
    if (bad) {
      const big = Math.max(...k);
      out.push(
        finding(n, `${kind}-kernel`, {
          message: `kernel ${k.join('×')} is larger than the chip's ${n.op} accepts (${p.kernels[0]}–${p.kernels[p.kernels.length - 1]})`,
          value: list(k),
          limit: p.kernels,
          source: `${file}:${lines.kernel}`,
          suggestion:
            kind === 'conv'
              ? `split it into ${Math.ceil((big - 1) / 2)} stacked 3×3 convs (the same receptive field), or a ${Math.min(big, 5)}×${Math.min(big, 5)} conv`
              : `pool in two steps (e.g. ${Math.ceil(big / 2)} then 2), or use a kernel of at most ${p.kernels[p.kernels.length - 1]}`,
        }),
      );
    }
  }
  const pads = n.pads!;
  if (pads.some((x) => !p.pads.includes(x)))
    out.push(
      finding(n, `${kind}-pad`, {
        message: `padding ${pads.join(', ')} is outside what the chip's ${n.op} accepts (${p.pads[0]}–${p.pads[p.pads.length - 1]} each side)`,
        value: list(pads),
        limit: p.pads,
        source: `${file}:${lines.pads}`,
        suggestion: 'pad less (a smaller kernel needs less padding for the same output size), or pad with an explicit pad layer before it',
      }),
    );
  if (s.some((x) => !p.strides.includes(x)))
    out.push(
      finding(n, `${kind}-stride`, {
        message: `stride ${s.join('×')} is not one the chip's ${n.op} accepts (${p.strides.join(', ')})`,
        value: list(s),
        limit: p.strides,
        source: `${file}:${lines.strides}`,
        suggestion: `stride 1 followed by a pool, or stride ${s.map((x) => (x === 3 ? 2 : x > 4 ? 4 : x)).join('×')}`,
      }),
    );
  if (dilated && !p.dilations.includes(Math.max(...d)))
    out.push(
      finding(n, 'conv-dilation', {
        message: `dilation ${d.join('×')}: the chip's ${n.op} ${p.dilations.length === 1 ? 'has no dilation' : `accepts ${p.dilations.join(', ')}`}`,
        value: list(d),
        limit: p.dilations,
        // tpacker packs it (its assert is commented out) but the executor computes other values,
        // so the thinker export refuses it
        source: n.op === 'ConvTranspose2dInt' ? `${OPS}/ConvTranspose2dInt.py:35` : 'src/engine/linger/ops/weighted/lower.ts:162',
        suggestion: 'an undilated conv with a larger kernel (at most 5), or stacked convs',
      }),
    );
  return out;
}

function conv2dRules(n: ChipNode, g: ChipGraph, p: ChipPlatform): Finding[] {
  const file = `${OPS}/Conv2dInt.py`;
  const out = windowRules(n, p, file, { kernel: 32, pads: 37, strides: 44 });
  const [kh, kw] = n.kernel!,
    [sh, sw] = n.strides!;
  if (kh < sh || kw < sw)
    out.push(
      finding(n, 'conv-stride-kernel', {
        message: `stride ${sh}×${sw} is larger than the kernel ${kh}×${kw}: tpacker's Conv2dInt needs kernel ≥ stride`,
        value: [kh, kw],
        limit: `≥ stride ${sh}×${sw}`,
        source: `${file}:47`,
        suggestion: 'a kernel at least as large as the stride, or a stride-1 conv followed by a pool',
      }),
    );
  const [[pt, pb], [pl, pr]] = padsPerAxis(n);
  if (Math.max(pt, pb) > kh || Math.max(pl, pr) > kw)
    out.push(
      finding(n, 'conv-pad-kernel', {
        message: `padding ${n.pads!.join(', ')} is larger than the kernel ${kh}×${kw}: tpacker's Conv2dInt needs pad ≤ kernel`,
        value: list(n.pads!),
        limit: `≤ kernel ${kh}×${kw}`,
        source: `${file}:50`,
        suggestion: 'pad at most the kernel size',
      }),
    );
  const x = g.shapes.get(n.inputs[0]);
  if (x && x.length === 4 && (x[2] < kh || x[3] < kw))
    out.push(
      finding(n, 'conv-input-smaller-than-kernel', {
        message: `the input ${x[2]}×${x[3]} is smaller than the kernel ${kh}×${kw} (tpacker compares before padding)`,
        value: [x[2], x[3]],
        limit: `≥ kernel ${kh}×${kw}`,
        source: `${file}:131`,
        suggestion: 'a smaller kernel here, or fewer downsampling layers before it',
      }),
    );
  out.push(...convWeightRules(n, x, p));
  return out;
}

/**
 * The packed weight of a conv must fit the conv unit's weight buffer. tpacker's op_split pass
 * (thinker/graph_optimizer/op_split.py) first splits a grouped conv into one conv a group and a
 * large common conv along its output channels; what it cannot split is refused.
 */
function convWeightRules(n: ChipNode, x: number[] | undefined, p: ChipPlatform): Finding[] {
  const w = n.weight;
  if (!w || !x) return [];
  const [cout, kc] = w;
  const kArea = n.kernel!.reduce((a, b) => a * b, 1);
  const group = n.group ?? 1;
  const f = (bytes: number, limit: number, source: string, message: string, suggestion: string) =>
    bytes <= limit ? [] : [finding(n, 'conv-weight-size', { message, value: bytes, limit, source, suggestion })];
  if (kc === 1 && group === cout) {
    // depthwise: the output channels are padded to 16 (ops/Conv2dInt.py:339)
    const bytes = ALIGN(cout, 16) * kArea;
    return f(
      bytes,
      p.convWeightBytes,
      `${OPS}/Conv2dInt.py:342`,
      `the depthwise conv's weights take ${bytes} bytes with its ${cout} channels padded to ${ALIGN(cout, 16)}, more than the ${p.convWeightBytes} the conv unit holds`,
      `at most ${Math.floor(p.convWeightBytes / kArea / 16) * 16} channels per depthwise conv (split the channels in two convs and concatenate)`,
    );
  }
  const h = x.length === 4 ? x[2] : 1,
    wd = x[x.length - 1],
    sw = n.strides![n.strides!.length - 1];
  // the input as the conv unit reads it: width to 8·stride, channels to 8 (op_split.py:331)
  const data = Math.ceil(wd / (8 * sw)) * 8 * sw * ALIGN(kc, 8) * h;
  if (group !== 1) {
    // each group becomes a conv: its weights fit, or its input does (op_split.py:337)
    const bytes = ALIGN(kc, 8) * ALIGN(cout / group, 2) * kArea;
    if (data <= p.convDataBytes) return [];
    return f(
      bytes,
      p.convWeightBytes,
      'thinker/graph_optimizer/op_split.py:337',
      `each group of the conv takes ${bytes} bytes of weights aligned and ${data} bytes of input: tpacker needs one of them within ${p.convWeightBytes} / ${p.convDataBytes}`,
      'more groups, fewer channels a group, or a smaller input',
    );
  }
  // a common conv is split along its output channels, two at least a part (op_split.py:436-440):
  // two output channels of weights must fit (otherwise tpacker divides by zero)
  const two = 2 * ALIGN(kc, 8) * kArea;
  return f(
    two,
    p.convWeightBytes,
    'thinker/graph_optimizer/op_split.py:440',
    `two output channels of the conv take ${two} bytes of weights (${ALIGN(kc, 8)} input channels aligned × ${n.kernel!.join('×')}): tpacker splits a conv's outputs in parts of at least two, which must fit its ${p.convWeightBytes} bytes`,
    'fewer input channels (a 1×1 conv first to reduce them), or a smaller kernel',
  );
}

function conv1dRules(n: ChipNode, g: ChipGraph, p: ChipPlatform): Finding[] {
  const file = `${OPS}/Conv1dInt.py`;
  const out = windowRules(n, p, file, { kernel: p.conv1dKernelChecked ? 28 : undefined, pads: 33, strides: 39 });
  const [k] = n.kernel!,
    [s] = n.strides!;
  if (k < s)
    out.push(
      finding(n, 'conv-stride-kernel', {
        message: `stride ${s} is larger than the kernel ${k}: tpacker's Conv1dInt needs kernel ≥ stride`,
        value: k,
        limit: `≥ stride ${s}`,
        source: `${file}:41`,
        suggestion: 'a kernel at least as large as the stride',
      }),
    );
  if (Math.max(...n.pads!) > k)
    out.push(
      finding(n, 'conv-pad-kernel', {
        message: `padding ${n.pads!.join(', ')} is larger than the kernel ${k}: tpacker's Conv1dInt needs pad ≤ kernel`,
        value: list(n.pads!),
        limit: `≤ kernel ${k}`,
        source: `${file}:44`,
        suggestion: 'pad at most the kernel size',
      }),
    );
  void g;
  return out;
}

function convTransposeRules(n: ChipNode, p: ChipPlatform): Finding[] {
  const file = `${OPS}/ConvTranspose2dInt.py`;
  const out = windowRules(n, p, file, { kernel: 39, pads: 44, strides: 51 });
  // a stride-2 transposed conv needs a kernel ≥ 2, stride 4 a kernel ≥ 4 (ops/ConvTranspose2dInt.py:54-61)
  const need = (s: number) => (s === 2 ? 2 : s === 4 ? 4 : 1);
  const k = n.kernel!,
    s = n.strides!;
  if (k.some((x, i) => x < need(s[i])))
    out.push(
      finding(n, 'convtranspose-stride-kernel', {
        message: `kernel ${k.join('×')} is too small for stride ${s.join('×')}: tpacker's ConvTranspose2dInt needs kernel ≥ 2 at stride 2 and ≥ 4 at stride 4`,
        value: list(k),
        limit: s.map(need),
        source: `${file}:54`,
        suggestion: 'a kernel at least the stride (e.g. 4 at stride 2 or 4)',
      }),
    );
  return out;
}

function poolRules(n: ChipNode, g: ChipGraph, p: ChipPlatform): Finding[] {
  const file = `${OPS}/Pool.py`;
  const out = windowRules(n, p, file, { kernel: 20, pads: 30, strides: 25 });
  // a pool reads int8 codes: one on the float input (before any quantized layer) or after a Dequant
  // is refused. In a float model only a MaxPool: init makes an AvgPool2d an AvgPool2dInt, which quantizes its input
  if ((g.bytes.get(n.inputs[0]) ?? 1) !== 1 && (g.dialect === 'thinker' || n.op === 'MaxPool'))
    out.push(
      finding(n, 'pool-input-int8', {
        message: `the pool's input is ${g.bytes.get(n.inputs[0])! * 8}-bit float, not the int8 codes the chip pools`,
        value: `float${g.bytes.get(n.inputs[0])! * 8}`,
        limit: 'int8',
        source: `${file}:${n.op === 'MaxPool' ? 68 : 129}`,
        suggestion: 'put a quantized layer (a conv) before the pool, or pool after the first layer',
      }),
    );
  const x = g.shapes.get(n.inputs[0]);
  if (x && x.length === 4) {
    // a pool whose input does not fit the buffer is split by rows; one row (all channels, width to
    // 8·stride) must fit (ops/Pool.py:91-104 MaxPool, 153-166 AvgPool2dInt)
    const sw = n.strides![1];
    const row = ALIGN(x[1], 8) * Math.ceil(x[3] / (8 * sw)) * 8 * sw;
    if (row * x[2] > p.convDataBytes && row > p.convDataBytes)
      out.push(
        finding(n, 'pool-row-size', {
          message: `one row of the pool's input takes ${row} bytes aligned, more than the ${p.convDataBytes} tpacker splits by`,
          value: row,
          limit: p.convDataBytes,
          source: `${file}:${n.op === 'MaxPool' ? 104 : 166}`,
          suggestion: 'fewer channels or a narrower input here',
        }),
      );
  }
  return out;
}

function linearRules(n: ChipNode, g: ChipGraph, p: ChipPlatform): Finding[] {
  const x = g.shapes.get(n.inputs[0]);
  if (!x || x.length < 2) return [];
  // int8 input: rows to 4, columns to 8 (ops/LinearInt.py:88-90)
  const rows = x[x.length - 2],
    cols = x[x.length - 1];
  const size = ALIGN(rows, 4) * ALIGN(cols, 8);
  if (size < p.linearLeftBytes) return [];
  return [
    finding(n, 'linear-input-size', {
      message: `the Linear's input [${rows}, ${cols}] takes ${size} bytes aligned to [${ALIGN(rows, 4)}, ${ALIGN(cols, 8)}]; tpacker's LinearInt needs less than ${p.linearLeftBytes}`,
      value: size,
      limit: p.linearLeftBytes,
      source: `${OPS}/LinearInt.py:90`,
      suggestion: 'pool or downsample before the Linear, or use a 1×1 conv on the feature map (linger FAQ)',
    }),
  ];
}

function bmmRules(n: ChipNode, g: ChipGraph, p: ChipPlatform): Finding[] {
  const x = g.shapes.get(n.inputs[0]);
  if (!x || x.length < 2) return [];
  // tpacker aligns the left matrix's dims 0 and 1 (the batch and the rows of a 3-D input) to 16 and 32 (ops/BmmInt.py:47-52)
  const size = ALIGN(x[0], 16) * ALIGN(x[1], 32);
  if (size < p.bmmLeftBytes) return [];
  return [
    finding(n, 'bmm-input-size', {
      message: `the bmm's left input [${x.join(', ')}] takes ${size} bytes as tpacker aligns it ([${ALIGN(x[0], 16)}, ${ALIGN(x[1], 32)}]); BmmInt needs less than ${p.bmmLeftBytes}`,
      value: size,
      limit: p.bmmLeftBytes,
      source: `${OPS}/BmmInt.py:52`,
      suggestion: 'a shorter sequence (fewer rows) per bmm',
    }),
  ];
}

function transposeRules(n: ChipNode, p: ChipPlatform): Finding[] {
  const perm = n.attrs.ints('perm') ?? [];
  if (perm.length <= p.transposeMaxRank) return [];
  return [
    finding(n, 'transpose-rank', {
      message: `a transpose of ${perm.length} axes; tpacker's Transpose takes at most ${p.transposeMaxRank}`,
      value: perm.length,
      limit: p.transposeMaxRank,
      source: `${OPS}/Transpose.py:14`,
    }),
  ];
}

/** Every rule, for every node of the graph. */
export function checkGraph(g: ChipGraph, p: ChipPlatform): Finding[] {
  const out: Finding[] = [];
  for (const n of g.nodes) {
    // an op type the platform has no kernel for: tpacker stops when it binds the ops to the cores
    // (thinker/combine.py:75; venus's list: thinker/enum_defines.py:55-104). Only a thinker export
    // names its ops as tpacker does; a Constant becomes a constant when loaded (load_model.py:160-166)
    // a float model's arithmetic on a float value (its input) stays float after init: the same refusal
    const floatArith =
      g.dialect !== 'thinker' && ['Add', 'Sub', 'Mul', 'Div'].includes(n.opType) && n.inputs.some((v) => g.bytes.get(v) === 4);
    if (floatArith || (g.dialect === 'thinker' && n.opType !== 'Constant' && !p.ops.includes(n.opType)))
      out.push({
        layer: n.layer,
        op: n.opType,
        rule: 'op-unsupported',
        message: `${n.opType} is not an op ${p.name} runs (tpacker: "platform:${p.name} do not support ${n.opType}!")`,
        value: n.opType,
        limit: `the ops of ${p.toolchain}`,
        severity: 'error',
        source: 'thinker/combine.py:75',
        suggestion:
          n.opType === 'Add' || n.opType === 'Mul' || n.opType === 'Sub'
            ? "a float operand stays float after init (e.g. the model's input): give both operands a quantized layer"
            : undefined,
      });
    if (n.op === 'Conv2dInt') out.push(...conv2dRules(n, g, p));
    else if (n.op === 'Conv1dInt') out.push(...conv1dRules(n, g, p));
    else if (n.op === 'ConvTranspose2dInt') out.push(...convTransposeRules(n, p));
    else if (n.op === 'MaxPool' || n.op === 'AvgPool2dInt') out.push(...poolRules(n, g, p));
    else if (n.op === 'LinearInt') out.push(...linearRules(n, g, p));
    else if (n.op === 'BmmInt') out.push(...bmmRules(n, g, p));
    else if (n.op === 'Transpose') out.push(...transposeRules(n, p));
  }
  return out;
}
