// Checks an exported ONNX file against the engine: float and traced exports and the fixed stage's
// 'qdq' dialect run in onnxruntime-node on a sample batch and are compared with the engine's eval
// output (float within 1e-4; qdq bit for bit, since it is the integer computation); 'thinker' uses
// linger's custom ops, which onnxruntime cannot run, so only its structure is checked.
import * as fs from 'node:fs';
import { tf } from '../backend/tf';
import { Module } from '../nn/module';
import { manualSeed } from '../random';
import { rand, Tensor } from '../tensor';
import { onnx } from './proto';
import type { OnnxDialect } from './export';

export interface OnnxVerification {
  dialect: OnnxDialect | 'float';
  /** 'onnxruntime' when the file ran there, 'structure' for thinker */
  method: 'onnxruntime' | 'structure';
  /** outputs compared */
  n: number;
  maxAbs?: number;
  /** share of output values equal bit for bit */
  equalFraction?: number;
  ok: boolean;
  /** one line for people, e.g. "qdq: 100% of 40 outputs bit-exact in onnxruntime" */
  summary: string;
}

type Ort = typeof import('onnxruntime-node');
function onnxruntime(): Ort {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('onnxruntime-node') as Ort;
  } catch (e) {
    throw new Error(`onnxruntime-node is not installed, so the export cannot be verified (${(e as Error).message.split('\n')[0]})`, {
      cause: e,
    });
  }
}

function percent(f: number): string {
  return f === 1 ? '100%' : `${(f * 100).toFixed(2)}%`;
}

/** Runs the check; `model` is the exported one, in eval mode, `inputShape` NCHW with any batch. */
export async function verifyOnnx(
  model: Module,
  file: string,
  dialect: OnnxDialect,
  inputShape: number[],
  batch = 4,
  input?: Tensor,
): Promise<OnnxVerification> {
  const stage = model.stage();
  const kind = stage === 'fixed' ? dialect : 'float';
  if (stage === 'fixed' && dialect === 'thinker') {
    const m = onnx.ModelProto.decode(fs.readFileSync(file));
    const nodes = m.graph?.node ?? [];
    const custom = nodes.filter((n) => n.domain === 'thinker');
    const domain = m.opsetImport?.some((o) => o.domain === 'thinker') ?? false;
    const ends = thinkerEnds(m.graph ?? {});
    const ok = domain && custom.length > 0 && ends;
    return {
      dialect,
      method: 'structure',
      n: nodes.length,
      ok,
      summary: ok
        ? `thinker: structure checked (${nodes.length} nodes, ${custom.length} in linger's thinker domain; inputs enter it through Quant, outputs leave through Dequant); onnxruntime cannot run that domain`
        : `thinker: unexpected structure (${domain ? '' : 'no thinker opset; '}${custom.length} thinker nodes${ends ? '' : '; an input or output bypasses Quant … Dequant'})`,
    };
  }
  const ort = onnxruntime();
  manualSeed(1234);
  // `input` (e.g. int32 indices, which random values would not be) or uniform values of inputShape
  const shape = input ? input.shape : [batch, ...inputShape.slice(1)];
  const x = input ?? rand(shape);
  const wasTraining = model.training;
  model.eval();
  let mine: Float32Array;
  try {
    mine = tf.tidy(() => Float32Array.from((model(x) as Tensor).dataSync()));
  } finally {
    model.train(wasTraining);
  }
  const session = await ort.InferenceSession.create(file);
  const feed =
    x.dtype === 'int32'
      ? new ort.Tensor('int32', x.dataSync() as Int32Array, shape)
      : new ort.Tensor('float32', x.dataSync() as Float32Array, shape);
  const out = await session.run({ [session.inputNames[0]]: feed });
  const theirs = out[session.outputNames[0]].data as Float32Array;
  if (theirs.length !== mine.length) {
    return {
      dialect: kind,
      method: 'onnxruntime',
      n: mine.length,
      ok: false,
      summary: `${kind}: onnxruntime gave ${theirs.length} outputs, the engine ${mine.length}`,
    };
  }
  let maxAbs = 0,
    equal = 0;
  for (let i = 0; i < mine.length; i++) {
    if (mine[i] === theirs[i]) equal++;
    const d = Math.abs(mine[i] - theirs[i]);
    maxAbs = Number.isNaN(d) ? Infinity : Math.max(maxAbs, d);
  }
  const equalFraction = equal / mine.length;
  if (kind === 'qdq') {
    return {
      dialect: kind,
      method: 'onnxruntime',
      n: mine.length,
      maxAbs,
      equalFraction,
      ok: equalFraction === 1,
      summary:
        `qdq: ${percent(equalFraction)} of ${mine.length} outputs bit-exact in onnxruntime` +
        (equalFraction === 1 ? '' : ` (max |Δ| ${maxAbs.toExponential(2)})`),
    };
  }
  const ok = maxAbs <= 1e-4;
  return {
    dialect: kind,
    method: 'onnxruntime',
    n: mine.length,
    maxAbs,
    equalFraction,
    ok,
    summary:
      `${stage}: ${mine.length} outputs within ${maxAbs.toExponential(1)} of the engine in onnxruntime` +
      (ok ? ' (≤ 1e-4)' : ' — above the 1e-4 tolerance'),
  };
}

/** Ops that only move values around: a graph input may pass them before its Quant, an output after its Dequant. */
const LAYOUT = new Set(['Reshape', 'Transpose', 'Flatten', 'Squeeze', 'Unsqueeze', 'Identity']);

/**
 * Every graph input reaches linger's domain (a Quant, or a thinker op taking int32 indices) through
 * layout ops only, and every graph output comes out of it (a Dequant, or a thinker op's float
 * result such as LSTMInt's cell state) through layout ops only.
 */
function thinkerEnds(g: onnx.IGraphProto): boolean {
  const nodes = g.node ?? [];
  const inits = new Set((g.initializer ?? []).map((t) => t.name));
  const inputs = (g.input ?? []).map((v) => v.name!).filter((n) => !inits.has(n));
  const outputs = (g.output ?? []).map((v) => v.name!);
  if (!inputs.length || !outputs.length) return false;
  const consumers = (name: string) => nodes.filter((n) => (n.input ?? []).includes(name));
  const producer = (name: string) => nodes.find((n) => (n.output ?? []).includes(name));
  const enters = (name: string, depth = 0): boolean => {
    const cs = consumers(name);
    return (
      depth < 64 &&
      cs.length > 0 &&
      cs.every((n) => n.domain === 'thinker' || (LAYOUT.has(n.opType!) && (n.output ?? []).every((o) => enters(o, depth + 1))))
    );
  };
  const leaves = (name: string, depth = 0): boolean => {
    const n = producer(name);
    return !!n && depth < 64 && (n.domain === 'thinker' || (LAYOUT.has(n.opType!) && leaves(n.input![0], depth + 1)));
  };
  return inputs.every((i) => enters(i)) && outputs.every((o) => leaves(o));
}
