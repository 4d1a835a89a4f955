// The imported model: an nn.Module whose children are real engine layers named after PyTorch's
// module paths and whose forward interprets the planned graph (docs/onnx.md, "Import from
// PyTorch"). Layer steps call the child at their path, looked up on every call, so
// traceLayers/init can replace children; other steps run the op's registered semantics.
import { Module } from '../../nn/module';
import { Tensor } from '../../tensor';
import { ConstValue, isConst } from './constEval';
import { RecurrentRun, recurrentShape, runRecurrent } from './recurrent';
import { execOp, NodeInfo } from './registry';
import { constTensor, RtValue } from './values';

export interface Step {
  node: NodeInfo;
  /**
   * layer: call the module at `path`; op: the node's own semantics; alias: output = input;
   * rnn: call the LSTM/GRU at `path` for a chain of nodes (`rnn` says which values); shape: a Shape
   * node of a value the rnn call replaced (dims from the rnn's input)
   */
  kind: 'layer' | 'op' | 'alias' | 'rnn' | 'shape';
  path?: string;
  rnn?: RecurrentRun;
  shape?: { input: string; batchFirst: boolean; width: number };
  /** outputs under other names (a MatMul whose bias Add was absorbed writes the Add's output) */
  outputs: string[];
}

/** A container for module paths (layer1, layer1.0, …) of an imported model. */
export class OnnxScope extends Module {
  forward(): never {
    throw new Error('an imported model runs from its root (this is a container of its layers)');
  }
}

/** An imported ONNX model: layers as children, the graph as its forward. */
export class OnnxModel extends Module {
  declare readonly program: Step[];
  declare readonly constants: Map<string, ConstValue>;
  declare readonly inputName: string;
  declare readonly outputNames: string[];
  /** the shape the model was built and checked with */
  declare readonly inputShape: number[];
  declare readonly opset: number;
  declare readonly file: string;
  /** modules created during the build run, not yet in the tree */
  declare pending: Map<string, Module> | null;
  /** the class name to print for the root (a Python model's own class, docs/python-models.md); default OnnxModel */
  displayName?: string;

  typeName(): string {
    return this.displayName ?? super.typeName();
  }

  forward(x: Tensor): Tensor | Tensor[] {
    const want = this.inputShape;
    if (!(x instanceof Tensor)) throw new Error('OnnxModel: the input must be a Tensor');
    const s = x.shape;
    if (s.length !== want.length || s.some((d, i) => i > 0 && d !== want[i])) {
      throw new Error(`OnnxModel (${this.file}): expected an input of shape [N, ${want.slice(1).join(', ')}], got [${s.join(', ')}]`);
    }
    const env = new Map<string, RtValue>(this.constants);
    env.set(this.inputName, x);
    for (const step of this.program) runStep(this, step, env);
    const outs = this.outputNames.map((n) => {
      const v = env.get(n);
      if (v === undefined) throw new Error(`OnnxModel: graph output '${n}' was not computed`);
      return isConst(v) ? constTensor(v) : v;
    });
    return outs.length === 1 ? outs[0] : outs;
  }

  resolve(path: string): Module {
    return this.pending?.get(path) ?? this.getSubmodule(path);
  }
}

export function runStep(model: OnnxModel, step: Step, env: Map<string, RtValue>): void {
  const n = step.node;
  const get = (i: number): RtValue | undefined => {
    const name = n.inputs[i];
    if (!name) return undefined;
    const v = env.get(name);
    if (v === undefined) throw new Error(`${n.what}: input '${name}' has no value`);
    return v;
  };
  try {
    let outs: RtValue[];
    if (step.kind === 'alias') outs = [get(0)!];
    else if (step.kind === 'rnn') {
      const r = step.rnn!;
      const vals = runRecurrent(
        model.resolve(step.path!),
        r,
        (name) => {
          const v = env.get(name);
          if (v === undefined) throw new Error(`${n.what}: input '${name}' has no value`);
          return v;
        },
        n.what,
      );
      for (const [k, v] of vals) env.set(k, v);
      return;
    } else if (step.kind === 'shape') {
      const sh = step.shape!;
      const x = env.get(sh.input);
      if (x === undefined || isConst(x)) throw new Error(`${n.what}: input '${sh.input}' has no value`);
      outs = recurrentShape(n, x, sh.batchFirst, sh.width);
    } else if (step.kind === 'layer') {
      const x = get(0);
      if (x === undefined) throw new Error(`${n.what}: no input`);
      outs = [model.resolve(step.path!)(isConst(x) ? constTensor(x) : x) as Tensor];
    } else
      outs = execOp(
        n,
        n.inputs.map((_, i) => get(i)),
        model.opset,
      );
    step.outputs.forEach((name, i) => {
      if (name && outs[i] !== undefined) env.set(name, outs[i]);
    });
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    throw new Error(msg.includes(n.what) ? msg : `${n.what}: ${msg}`, { cause: e });
  }
}

/** The values a step reads (a layer only its input: its weights are the module's). */
export function stepInputs(s: Step): string[] {
  if (s.kind === 'layer') return s.node.inputs.slice(0, 1);
  if (s.kind === 'shape') return [s.shape!.input];
  if (s.kind === 'rnn') return [s.rnn!.input, ...s.rnn!.h0, ...s.rnn!.c0].filter(Boolean);
  return s.node.inputs;
}
