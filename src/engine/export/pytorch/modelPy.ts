// model.py of a PyTorch project (docs/scale-out.md#what-the-export-writes): the engine's float model
// as a readable torch.nn.Module. __init__ comes from the module tree (each layer's printed settings
// are PyTorch's constructor arguments), forward from one recorded eval pass (leaf-module calls and
// tensor ops, onnx/capture.ts). Layer names, and so state-dict keys, are the engine's; a layer or an
// op without a PyTorch form here is an error naming it.
import { tf } from '../../backend/tf';
import { Module } from '../../nn/module';
import { ReLU, ReLU6, Sigmoid, Tanh, Identity } from '../../nn/activation';
import { BatchNorm1d, BatchNorm2d } from '../../nn/batchnorm';
import { Conv1d, Conv2d, ConvTranspose2d } from '../../nn/conv';
import { Linear } from '../../nn/linear';
import { Dropout, Flatten, Softmax } from '../../nn/misc';
import { AdaptiveAvgPool2d, AvgPool2d, MaxPool2d } from '../../nn/pooling';
import { GRU, LSTM } from '../../nn/recurrent';
import { Embedding, LayerNorm } from '../../nn/sequence';
import { ModuleList, Sequential } from '../../nn/container';
import { captureForExport, CapturedCall } from '../../onnx/capture';
import { identity, inverse, Tensor } from '../../tensor';

export class PytorchExportError extends Error {}

/** Engine layers whose printed settings are the arguments of the torch.nn class of the same name. */
const LAYERS: (abstract new (...a: never[]) => Module)[] = [
  Conv1d,
  Conv2d,
  ConvTranspose2d,
  BatchNorm1d,
  BatchNorm2d,
  LayerNorm,
  Linear,
  GRU,
  LSTM,
  Embedding,
  ReLU,
  ReLU6,
  Sigmoid,
  Tanh,
  Identity,
  Softmax,
  Dropout,
  Flatten,
  MaxPool2d,
  AvgPool2d,
  AdaptiveAvgPool2d,
];

function layerClass(m: Module): string | undefined {
  const c = Object.getPrototypeOf(m).constructor;
  return LAYERS.includes(c) ? m.typeName() : undefined;
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
const PY_KEYWORDS = new Set([
  'and',
  'as',
  'class',
  'def',
  'del',
  'for',
  'from',
  'if',
  'import',
  'in',
  'is',
  'lambda',
  'not',
  'or',
  'return',
]);

/** `self.a.b[0].c`: digits index a Sequential/ModuleList. */
function access(path: string): string {
  if (!path) return 'self';
  return (
    'self' +
    path
      .split('.')
      .map((p) => (/^\d+$/.test(p) ? `[${p}]` : `.${p}`))
      .join('')
  );
}

/** The __init__ lines: every module of the tree, containers as nn.Module / nn.Sequential / nn.ModuleList. */
function initLines(model: Module): string[] {
  const lines: string[] = [];
  const own = model.ownParameters();
  if (own.length)
    throw new PytorchExportError(`${model.typeName()} holds the parameter '${own[0][0]}' itself: only layers may hold parameters`);
  const walk = (m: Module, p: string) => {
    for (const [name, c] of m.namedChildren()) {
      const path = p ? `${p}.${name}` : name;
      const cls = layerClass(c);
      let ctor: string;
      if (cls) ctor = `nn.${cls}(${c.extraRepr()})`;
      else if (c.children().length === 0 && Object.keys(c.stateDict()).length === 0) {
        // a parameter-free layer of the user's: its ops are written out in forward
        lines.push(`# (${path}): ${c.typeName()}, written out in forward`);
        continue;
      } else if (c.children().length === 0) {
        throw new PytorchExportError(`the layer '${path}' (${c.typeName()}) has no PyTorch counterpart in this export`);
      } else {
        const params = c.ownParameters();
        if (params.length)
          throw new PytorchExportError(
            `the module '${path}' (${c.typeName()}) holds the parameter '${params[0][0]}' itself: only layers may`,
          );
        ctor = c instanceof Sequential ? 'nn.Sequential()' : c instanceof ModuleList ? 'nn.ModuleList()' : 'nn.Module()';
      }
      // a block of the user's own class is a plain nn.Module here: its forward is written out in the model's
      const note = ctor === 'nn.Module()' ? `  # ${c.typeName()}` : '';
      if (IDENT.test(name) && !PY_KEYWORDS.has(name)) lines.push(`${access(path)} = ${ctor}${note}`);
      else lines.push(`${access(p)}.add_module(${JSON.stringify(name)}, ${ctor})${note}`);
      if (!cls) walk(c, path);
    }
  };
  walk(model, '');
  return lines;
}

const pyList = (v: number[]) => `(${v.join(', ')}${v.length === 1 ? ',' : ''})`;
const pyNum = (v: number) => (Number.isFinite(v) ? String(v) : Number.isNaN(v) ? "float('nan')" : v > 0 ? "float('inf')" : "-float('inf')");

/** The permutation an op applied, from the layouts of its input and output (permute records no dims). */
function permOf(x: Tensor, y: Tensor): number[] {
  const cur = inverse(x.perm ?? identity(x.rank));
  return (y.perm ?? identity(y.rank)).map((p) => cur[p]);
}

/** The forward lines of one recorded pass. */
function forwardLines(model: Module, example: Tensor): string[] {
  return tf.tidy(() => {
    const cap = captureForExport(model, example, (m) => layerClass(m) !== undefined);
    const names = new Map<Tensor, string>([[cap.input, 'x']]);
    const used = new Set(['x', 'self', 'torch', 'nn', 'F']);
    const fresh = (base: string) => {
      let b = base.replace(/[^A-Za-z0-9_]/g, '_').replace(/^(\d)/, '_$1') || 'v';
      if (PY_KEYWORDS.has(b)) b += '_';
      let n = b;
      for (let i = 2; used.has(n); i++) n = `${b}_${i}`;
      used.add(n);
      return n;
    };
    const where = (c: CapturedCall) => (c.kind === 'module' ? `the call of '${c.target}'` : `the op '${c.target}'`);
    const arg = (c: CapturedCall, v: Tensor | number): string => {
      if (typeof v === 'number') return pyNum(v);
      const n = names.get(v);
      if (!n)
        throw new PytorchExportError(
          `${where(c)} reads a tensor that forward made without a recorded op (a constant or a parameter used directly): not exportable`,
        );
      return n;
    };
    const lines: string[] = [];
    for (const c of cap.calls) {
      if (c.kind === 'module') {
        if (c.args?.length)
          throw new PytorchExportError(`${where(c)} passes non-tensor arguments (${JSON.stringify(c.args)}): not exportable`);
        const m = c.module!;
        const call = `${access(c.target)}(${c.inputs.map((v) => arg(c, v)).join(', ')})`;
        const base = c.target.split('.').join('_');
        if (m instanceof LSTM) {
          if (c.inputs.length !== 1) throw new PytorchExportError(`${where(c)}: an LSTM called with an initial state is not exportable`);
          const [y, h, s] = c.outputs.map((t, i) => {
            const n = fresh(`${base}_${['out', 'h', 'c'][i]}`);
            names.set(t, n);
            return n;
          });
          lines.push(`${y}, (${h}, ${s}) = ${call}`);
        } else if (c.outputs.length > 1) {
          const outs = c.outputs.map((t, i) => {
            const n = fresh(`${base}_${m instanceof GRU ? ['out', 'h'][i] : String(i)}`);
            names.set(t, n);
            return n;
          });
          lines.push(`${outs.join(', ')} = ${call}`);
        } else {
          const n = fresh(base);
          names.set(c.outputs[0], n);
          lines.push(`${n} = ${call}`);
        }
        continue;
      }
      const expr = opExpr(c, (v) => arg(c, v));
      const n = fresh(c.target === 'permute' && expr.includes('.transpose(') ? 'transpose' : c.target);
      names.set(c.outputs[0], n);
      lines.push(`${n} = ${expr}`);
    }
    const outs = cap.outputs.map((t) => {
      const n = names.get(t);
      if (!n) throw new PytorchExportError('the model returns a tensor that no recorded call made (its input itself?)');
      return n;
    });
    lines.push(`return ${outs.join(', ')}`);
    return lines;
  });
}

const UNARY: Record<string, string> = {
  neg: 'torch.neg',
  abs: 'torch.abs',
  exp: 'torch.exp',
  log: 'torch.log',
  sqrt: 'torch.sqrt',
  relu: 'torch.relu',
  sigmoid: 'torch.sigmoid',
  tanh: 'torch.tanh',
  relu6: 'F.relu6',
};
const BINARY: Record<string, string> = { add: '+', sub: '-', mul: '*', div: '/' };

function opExpr(c: CapturedCall, arg: (v: Tensor | number) => string): string {
  const op = c.target;
  const a = (c.attrs ?? {}) as Record<string, unknown>;
  const x = c.inputs[0];
  const y = c.outputs[0];
  if (BINARY[op]) return `${arg(c.inputs[0])} ${BINARY[op]} ${arg(c.inputs[1])}`;
  if (UNARY[op]) return `${UNARY[op]}(${arg(x)})`;
  switch (op) {
    case 'reshape':
      return `${arg(x)}.reshape(${(a.shape as number[]).join(', ')})`;
    case 'flatten': {
      // no dims recorded: start is where the shapes part, end follows from the rank difference
      const s = (x as Tensor).shape;
      const o = y.shape;
      let start = 0;
      while (start < o.length && s[start] === o[start]) start++;
      start = Math.min(start, o.length - 1);
      return `torch.flatten(${arg(x)}, ${start}, ${start + s.length - o.length})`;
    }
    case 'permute': {
      const p = permOf(x as Tensor, y);
      const moved = p.map((v, i) => (v !== i ? i : -1)).filter((i) => i >= 0);
      if (moved.length === 0) return arg(x);
      if (moved.length === 2) return `${arg(x)}.transpose(${moved[0]}, ${moved[1]})`;
      return `${arg(x)}.permute(${p.join(', ')})`;
    }
    case 'clamp': {
      const b = (v: unknown) => (typeof v === 'number' ? pyNum(v) : 'None');
      return `torch.clamp(${arg(x)}, min=${b(a.min)}, max=${b(a.max)})`;
    }
    case 'narrow':
      return `${arg(x)}.narrow(${a.dim as number}, ${a.start as number}, ${a.length as number})`;
    case 'matmul':
    case 'bmm':
      return `torch.${op}(${arg(c.inputs[0])}, ${arg(c.inputs[1])})`;
    case 'sum':
    case 'mean':
    case 'max':
    case 'min': {
      const fn = op === 'max' ? 'torch.amax' : op === 'min' ? 'torch.amin' : `torch.${op}`;
      if (a.dim === undefined) return `${op === 'max' || op === 'min' ? `torch.${op}` : fn}(${arg(x)})`;
      const dim = Array.isArray(a.dim) ? pyList(a.dim as number[]) : String(a.dim);
      return `${fn}(${arg(x)}, dim=${dim}, keepdim=${a.keepdim ? 'True' : 'False'})`;
    }
    case 'cat':
      if (typeof a.dim === 'number') return `torch.cat([${c.inputs.map(arg).join(', ')}], dim=${a.dim})`;
      break;
    case 'softmax':
    case 'log_softmax':
      if (typeof a.dim === 'number') return `F.${op}(${arg(x)}, dim=${a.dim})`;
      break;
    case 'pow':
      if (typeof a.exponent === 'number') return `torch.pow(${arg(x)}, ${pyNum(a.exponent)})`;
      break;
  }
  throw new PytorchExportError(
    `the op '${op}' in forward has no PyTorch form in this export${c.attrs ? '' : ' (or records no attributes)'}`,
  );
}

/** The source of model.py: one class, named as the engine's model. */
export function modelPy(model: Module, example: Tensor, className = model.typeName()): string {
  if (!IDENT.test(className)) throw new PytorchExportError(`'${className}' is not a Python class name`);
  const init = initLines(model);
  const fwd = forwardLines(model, example);
  const shape = example.shape.slice(1).join(', ');
  const ids = example.dtype === 'int32';
  return `"""${className}: the Linger Studio model as a PyTorch module (generated by linger export-pytorch).

Layer names and state-dict keys are the studio's, so weights load both ways with
load_state_dict(strict=True). Input: ${ids ? 'token ids, an int64 tensor' : 'a float tensor'} [N, ${shape}].
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class ${className}(nn.Module):
    def __init__(self):
        super().__init__()
${init.map((l) => `        ${l}`).join('\n')}

    def forward(self, x):
${fwd.map((l) => `        ${l}`).join('\n')}


INPUT_SHAPE = (${shape}${example.rank === 2 ? ',' : ''})  # one sample, without the batch
INPUT_DTYPE = ${ids ? 'torch.long' : 'torch.float32'}


def create_model():
    return ${className}()
`;
}
