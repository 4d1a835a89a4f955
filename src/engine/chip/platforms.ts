// The chips' limits as data (docs/chip-rules.md): one table per platform, read by the same rules
// (rules.ts) and the same memory plan (memory.ts). A platform is a table, never a code path.

/** The limits one platform's packer checks. Sets are the values it accepts; sizes are bytes. */
export interface ChipPlatform {
  name: string;
  /** the toolchain whose checks the table restates */
  toolchain: string;
  /** Conv2dInt, Conv1dInt, ConvTranspose2dInt and the pools: accepted kernel sizes (undilated) */
  kernels: number[];
  /** a dilated conv's effective kernel, (k − 1)·d + 1, may be at most this (null: no dilation) */
  dilatedKernelMax: number | null;
  /** accepted dilations of Conv2dInt / Conv1dInt ([1]: none) */
  dilations: number[];
  /** accepted pads, each side */
  pads: number[];
  /** accepted strides */
  strides: number[];
  /** Conv1dInt checks its kernel size too (thinker 1.x checks only pads and strides) */
  conv1dKernelChecked: boolean;
  /** a conv's packed weights (after thinker's channel alignment) must fit this many bytes ... */
  convWeightBytes: number;
  /** ... unless its input, aligned, fits this many (then tpacker splits the output channels) */
  convDataBytes: number;
  /** LinearInt's left matrix, ALIGN4(rows)·ALIGN8(cols) int8, must be smaller than this */
  linearLeftBytes: number;
  /** BmmInt's left matrix, ALIGN16(dim 0)·ALIGN32(dim 1) int8, must be smaller than this */
  bmmLeftBytes: number;
  /** Transpose: at most this many axes */
  transposeMaxRank: number;
  /** the on-chip SRAM tpacker plans activations into (SHARE_MEM) */
  sramBytes: number;
  /** the external PSRAM weights and what does not fit the SRAM go to */
  psramBytes: number;
  /** the op types the platform runs (an ONNX node of another type is refused) */
  ops: string[];
}

/**
 * venus: linger 1.x / thinker v1.1.0. Cited lines are of thinker v1.1.0's
 * thinker/resource_packer/ops/*.py (the asserts tpacker stops with).
 */
export const VENUS: ChipPlatform = {
  name: 'venus',
  toolchain: 'thinker v1.1.0 (tpacker)',
  kernels: [1, 2, 3, 4, 5], // tpacker: ops/Conv2dInt.py:32 (v1.1.0)
  dilatedKernelMax: null,
  // tpacker packs a dilated conv (the assert is commented out, ops/Conv2dInt.py:362) but the
  // executor computes other values: the thinker export refuses it (docs/onnx.md, thinker conformance)
  dilations: [1],
  pads: [0, 1, 2, 3, 4], // tpacker: ops/Conv2dInt.py:37 (v1.1.0)
  strides: [1, 2, 4], // tpacker: ops/Conv2dInt.py:44 (v1.1.0)
  conv1dKernelChecked: false, // tpacker: ops/Conv1dInt.py:26-39 check pads and strides only (v1.1.0)
  convWeightBytes: 32768, // tpacker: ops/Conv2dInt.py:342, 367, 402 (v1.1.0)
  convDataBytes: 65536, // tpacker: ops/Conv2dInt.py:402 (v1.1.0)
  linearLeftBytes: 65536, // tpacker: ops/LinearInt.py:90 (v1.1.0)
  bmmLeftBytes: 65536, // tpacker: ops/BmmInt.py:52 (v1.1.0)
  transposeMaxRank: 6, // tpacker: ops/Transpose.py:14 (v1.1.0)
  sramBytes: 640 * 1024, // tpacker: thinker/combine.py:101, MAX_THRESHOLD (v1.1.0)
  psramBytes: 8 * 1024 * 1024,
  // tpacker: thinker/enum_defines.py:55-104, checked at thinker/combine.py:75 (v1.1.0)
  ops: [
    ...['Conv1dInt', 'Conv2dInt', 'ConvTranspose2dInt', 'Relu', 'Prelu', 'Clip', 'MaxPool', 'AvgPool2dInt', 'LinearInt', 'GRUInt'],
    ...['LSTMInt', 'BmmInt', 'iqSigmoid', 'iqTanh', 'iqCat', 'iqPad', 'Transpose', 'Reshape', 'Squeeze', 'Unsqueeze', 'Flatten'],
    ...['Slice', 'iqSum', 'iqSub', 'iqAdd', 'iqMul', 'iqDiv', 'Resize', 'Gather', 'Quant', 'Dequant', 'SoftmaxInt', 'ShuffleChannel'],
    ...['LogSoftmaxInt', 'Split', 'BatchNorm2dInt', 'ReduceMean', 'Requant', 'LayerNormInt', 'iqVar', 'Cast', 'Expand', 'Tile'],
    'LogSoftmax',
  ],
};

/**
 * arcs / venusA: thinker 2.x/3.x, as the issue describes them (dilation {1, 2, 4, 8}, kernel ≤ 5
 * or ≤ 12 dilated, pads 0–11, 384 KB SRAM). Not checked against a packer here: no such reference
 * is installed; the table shows the structure takes it.
 */
export const ARCS: ChipPlatform = {
  ...VENUS,
  name: 'arcs',
  toolchain: 'thinker 2.x/3.x (not verified here)',
  dilatedKernelMax: 12,
  dilations: [1, 2, 4, 8],
  pads: Array.from({ length: 12 }, (_, i) => i),
  conv1dKernelChecked: true,
  sramBytes: 384 * 1024,
};

export const PLATFORMS: Record<string, ChipPlatform> = { venus: VENUS, arcs: ARCS, venusA: { ...ARCS, name: 'venusA' } };

export function platformOf(name: string): ChipPlatform {
  const p = PLATFORMS[name];
  if (!p) throw new Error(`checkChip: unknown platform '${name}' (${Object.keys(PLATFORMS).join(', ')})`);
  return p;
}
