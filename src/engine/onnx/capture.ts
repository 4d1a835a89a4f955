// One eval forward pass recorded for export: like trace/graph.ts's captureGraph (leaf module
// calls and functional/tensor ops with their dataflow), but keeping what an exporter needs that a
// plain graph does not: the Tensor objects themselves (layout, carried quantization scale,
// constant values), the module instances, the call's non-tensor arguments, and each quantized
// layer's scales as that very call used them (a shared module can be called more than once).
import { Module, withModuleCallHook, withRetainedIntermediates } from '../nn/module';
import { Tensor, withoutRecording, withRecorder } from '../tensor';
import { isLeaf } from '../trace/graph';

export interface CapturedCall {
  kind: 'module' | 'op';
  /** module: its path in the root ('' the root itself); op: the op name */
  target: string;
  module?: Module;
  /** tensor inputs in call order; numbers for scalar operands of ops */
  inputs: (Tensor | number)[];
  outputs: Tensor[];
  /** the non-tensor arguments of a module call (e.g. iqCat's dim) */
  args?: unknown[];
  attrs?: Record<string, unknown>;
  /** scale_x / scale_w / scale_o (and BmmInt's scale_y) of a quantized layer right after this call */
  scales?: { x?: number; w?: number; o?: number; y?: number };
}

export interface Capture {
  calls: CapturedCall[];
  input: Tensor;
  outputs: Tensor[];
}

function flattenTensors(v: unknown, out: Tensor[] = []): Tensor[] {
  if (v instanceof Tensor) out.push(v);
  else if (Array.isArray(v)) v.forEach((x) => flattenTensors(x, out));
  return out;
}

function bufferValue(m: Module, k: string): number | undefined {
  const b = (m as unknown as Record<string, unknown>)[k];
  return b instanceof Tensor ? b.raw.dataSync()[0] : undefined;
}

/**
 * Runs `model(input)` once in eval mode and records it: calls of leaf modules that `exportable`
 * accepts as one call each, everything else as the ops it runs. Must run inside a tf.tidy scope that
 * stays open while the capture is used: the recorded tensors are the live intermediates.
 */
export function captureForExport(model: Module, input: Tensor, exportable: (m: Module) => boolean): Capture {
  const paths = new Map<Module, string>();
  for (const [p, m] of model.namedModules()) paths.set(m, p);
  const calls: CapturedCall[] = [];
  const producedByModule = new Set<Tensor>();

  const modes = model.modules().map((m) => [m, m.training] as const);
  model.eval();
  let result: unknown;
  try {
    result = withRecorder(
      (op, ins, out, attrs) => {
        // an add/cat that a fixed-stage model handed to its iqAdd/iqCat layer was recorded as that
        // layer's call already (the layer ran inside the op)
        if (producedByModule.has(out)) return;
        calls.push({ kind: 'op', target: op, inputs: ins, outputs: [out], ...(attrs ? { attrs } : {}) });
      },
      () =>
        withRetainedIntermediates(() =>
          withModuleCallHook(
            (m, args, run) => {
              // a leaf the exporter does not know (a user's parameter-free module) is recorded op by op
              if (!isLeaf(m) || !exportable(m)) return run();
              const out = withoutRecording(run);
              const ins = flattenTensors(args);
              // a module that returns its input (Identity) still gets an output of its own
              const outs = flattenTensors(out).map((t) => (ins.includes(t) ? new Tensor(t.raw, t.perm, t.quantScale) : t));
              // a module without children whose result a layer called inside it made (nn.Sigmoid handing
              // its op to an IQSigmoid in the fixed stage) was recorded as that inner call already
              if (m.children().length === 0 && outs.length && outs.every((t) => producedByModule.has(t))) return out;
              const scales = {
                x: bufferValue(m, 'scale_x'),
                w: bufferValue(m, 'scale_w'),
                o: bufferValue(m, 'scale_o'),
                y: bufferValue(m, 'scale_y'),
              };
              // (the fixed stage's op layers become children at their first call)
              if (!paths.has(m)) for (const [p, mm] of model.namedModules()) paths.set(mm, p);
              calls.push({
                kind: 'module',
                target: paths.get(m) ?? '?',
                module: m,
                inputs: ins,
                outputs: outs,
                args: args.filter((a) => !(a instanceof Tensor) && !Array.isArray(a)),
                ...(scales.x !== undefined || scales.o !== undefined ? { scales } : {}),
              });
              for (const t of outs) producedByModule.add(t);
              // the module's own result structure (e.g. an LSTM's [y, [h, c]]) with the recorded tensors
              let k = 0;
              const rebuild = (v: unknown): unknown => (v instanceof Tensor ? outs[k++] : Array.isArray(v) ? v.map(rebuild) : v);
              return rebuild(out);
            },
            () => model(input),
          ),
        ),
    );
  } finally {
    for (const [m, t] of modes) m.training = t;
  }
  const outputs = flattenTensors(result);
  if (outputs.length === 0) throw new Error('exportOnnx: the model returned no tensor');
  return { calls, input, outputs };
}
