// Building the imported model from its plan: the modules are made during a first forward on zeros
// of the input shape (when each layer's input rank and size are known, so a bad file fails at
// import, never later), then put into the tree at PyTorch's module paths, in PyTorch's order.
import { tf } from '../../backend/tf';
import { hidden } from '../../nn/conv';
import { withoutInit } from '../../nn/init';
import { Module } from '../../nn/module';
import { Tensor } from '../../tensor';
import { isConst } from './constEval';
import { OnnxModel, OnnxScope, runStep, stepInputs } from './model';
import { Plan } from './plan';
import { Graph } from './read';
import { makeRecurrent } from './recurrent';
import { BuildContext, opDef } from './registry';
import { constTensor, keepConstTensor, RtValue } from './values';

/** Names a child must not take: the Module API's and the model's own fields. */
const RESERVED = new Set<string>();
for (let p: object | null = Module.prototype; p && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
  for (const k of Object.getOwnPropertyNames(p)) RESERVED.add(k);
}
for (const k of [
  'training',
  'program',
  'constants',
  'inputName',
  'outputNames',
  'inputShape',
  'opset',
  'file',
  'pending',
  'constructor',
  '__proto__',
  'prototype',
])
  RESERVED.add(k);

export function buildModel(g: Graph, { steps, layerPaths, modulePaths, rnnPlans }: Plan): OnnxModel {
  const model = new OnnxModel();
  // graph outputs that are the input or constants still need a step to appear in env
  hidden(model, {
    program: steps,
    constants: new Map(g.consts),
    inputName: g.inputName,
    outputNames: g.outputNames,
    inputShape: g.inputShape,
    opset: g.opset,
    file: g.file,
    pending: new Map<string, Module>(),
  });
  // constants that feed tensor ops become engine tensors once, here (not inside the build's tidy)
  for (const s of steps) {
    if (s.kind !== 'op' || !opDef(s.node.op)?.tensorConsts) continue;
    for (const i of s.node.inputs) {
      const c = i ? g.consts.get(i) : undefined;
      if (c && c.data.length > 1) keepConstTensor(c);
    }
  }
  const ctx: BuildContext = { opset: g.opset, constant: (name) => g.consts.get(name)! };
  const creators = new Map<string, (x: Tensor) => Module>();
  for (const [p, n] of layerPaths) creators.set(p, (x) => opDef(n.op)!.layer!.make(n, x, ctx));
  for (const [p, ns] of modulePaths) creators.set(p, (x) => opDef(ns[0].op)!.module!.make(ns[0], x, ctx));
  for (const p of rnnPlans) creators.set(p.path, () => makeRecurrent(p, g.consts));
  const order: string[] = [];
  const pending = model.pending!;
  model.resolve = (path: string) => {
    let m = pending.get(path);
    if (!m) {
      const make = creators.get(path);
      if (!make) throw new Error(`internal: no module for path '${path}'`);
      m = withoutInit(() => make(lastInput!));
      m.eval();
      pending.set(path, m);
      order.push(path);
    }
    return m;
  };
  let lastInput: Tensor | null = null;
  const env = new Map<string, RtValue>(g.consts);
  tf.tidy(() => {
    const x = tf.zeros(g.inputShape);
    env.set(g.inputName, new Tensor(x));
    for (const s of steps) {
      if (s.kind === 'layer') {
        const v = env.get(s.node.inputs[0]);
        lastInput = v === undefined ? null : isConst(v) ? constTensor(v) : v;
      }
      runStep(model, s, env);
      for (const o of s.outputs) {
        const v = env.get(o);
        if (v && !isConst(v) && v.size > 1 << 26) throw new Error(`${s.node.what}: its output [${v.shape.join(', ')}] is too large`);
      }
    }
    for (const o of g.outputNames) if (!env.has(o)) throw new Error(`graph output '${o}' was not computed`);
  });
  delete (model as { resolve?: unknown }).resolve;
  // the layers own their weights now: keep only the constants that ops and outputs read
  const read = new Set<string>(g.outputNames);
  for (const s of steps) for (const i of stepInputs(s)) if (i) read.add(i);
  for (const k of [...model.constants.keys()]) if (!read.has(k)) model.constants.delete(k);
  attach(model, order, pending, g.initOrder);
  model.pending = null;
  model.eval();
  return model;
}

/** Puts the modules into the tree: PyTorch's order (the initializers') when every layer is named, else call order. */
function attach(model: OnnxModel, order: string[], mods: Map<string, Module>, initOrder: Map<string, number>): void {
  const named = order.map((p) => {
    const m = mods.get(p)!;
    const keys = [...m.ownParameters(), ...m.ownBuffers()].map(([k]) => `${p}.${k}`).filter((k) => initOrder.has(k));
    return keys.length ? Math.min(...keys.map((k) => initOrder.get(k)!)) : null;
  });
  const hasParams = (p: string) => mods.get(p)!.ownParameters().length > 0;
  const byInit = order.every((p, i) => !hasParams(p) || named[i] !== null);
  const key = new Map<string, number>();
  let last = -1,
    step = 0;
  order.forEach((p, i) => {
    if (byInit && named[i] !== null) {
      last = named[i]!;
      step = 0;
      key.set(p, last);
    } else key.set(p, byInit ? last + ++step * 1e-6 : i);
  });
  // a container's key is its first descendant's
  const nodeKey = (p: string) => Math.min(...order.filter((q) => q === p || q.startsWith(p + '.')).map((q) => key.get(q)!));
  const safe = new Map<string, string>();
  const safeName = (parent: Module, k: string) => {
    let name = k;
    while (RESERVED.has(name) || (name in parent && !((parent as unknown as Record<string, unknown>)[name] instanceof Module))) name += '_';
    return name;
  };
  const sorted = [...order].sort((a, b) => nodeKey(a) - nodeKey(b) || (a < b ? -1 : 1));
  const containerFor = (path: string): Module => {
    if (!path) return model;
    const parts = path.split('.');
    let cur: Module = model;
    let walked = '';
    for (const part of parts) {
      walked = walked ? `${walked}.${part}` : part;
      const name = safe.get(walked) ?? safeName(cur, part);
      safe.set(walked, name);
      const rec = cur as unknown as Record<string, Module>;
      if (!(rec[name] instanceof Module)) rec[name] = new OnnxScope();
      cur = rec[name];
    }
    return cur;
  };
  // containers are made when their first module is attached, so field order follows the sort
  const finalPath = new Map<string, string>();
  for (const p of sorted) {
    const parts = p.split('.');
    const parentPath = parts.slice(0, -1).join('.');
    const parent = containerFor(parentPath);
    const leaf = parts[parts.length - 1];
    let name = safeName(parent, leaf);
    if ((parent as unknown as Record<string, unknown>)[name] instanceof Module) name = `${name}_${Object.keys(parent).length}`;
    (parent as unknown as Record<string, Module>)[name] = mods.get(p)!;
    const parentFinal = parentPath
      ? parentPath
          .split('.')
          .map((_, i, arr) => safe.get(arr.slice(0, i + 1).join('.'))!)
          .join('.')
      : '';
    finalPath.set(p, parentFinal ? `${parentFinal}.${name}` : name);
  }
  for (const s of model.program) if (s.path !== undefined) s.path = finalPath.get(s.path) ?? s.path;
}
