// A small ONNX graph under construction: unique names, cached scalar constants, nodes in order.
import { DT, node, onnx, tensorProto, AttrValue } from './proto';

export class GraphBuilder {
  readonly nodes: onnx.INodeProto[] = [];
  readonly initializers: onnx.ITensorProto[] = [];
  private readonly used = new Set<string>();
  private readonly scalars = new Map<string, string>();

  /** `base`, or `base_1`, `base_2`… if taken. */
  unique(base: string): string {
    let name = base;
    for (let i = 1; this.used.has(name); i++) name = `${base}_${i}`;
    this.used.add(name);
    return name;
  }
  reserve(name: string): void {
    this.used.add(name);
  }

  initializer(base: string, dims: number[], dataType: number, values: ArrayLike<number>): string {
    const name = this.unique(base);
    this.initializers.push(tensorProto(name, dims, dataType, values));
    return name;
  }

  /** A scalar constant (shared by every use of the same value and type). */
  scalar(v: number, dataType: number = DT.FLOAT): string {
    const key = `${dataType}:${Object.is(v, -0) ? '-0' : v}`;
    let name = this.scalars.get(key);
    if (!name) {
      const tag =
        dataType === DT.FLOAT
          ? ''
          : dataType === DT.DOUBLE
            ? '_f64'
            : dataType === DT.INT32
              ? '_i32'
              : dataType === DT.INT64
                ? '_i64'
                : `_t${dataType}`;
      name = this.initializer(`const_${String(v).replace(/[^0-9a-zA-Z.+-]/g, '_')}${tag}`, [], dataType, [v]);
      this.scalars.set(key, name);
    }
    return name;
  }

  /** Adds a node named `name` (made unique); returns its output names. */
  add(
    opType: string,
    inputs: string[],
    name: string,
    attrs: Record<string, AttrValue | undefined> = {},
    opts: { outputs?: number; domain?: string } = {},
  ): string[] {
    const nodeName = this.unique(name);
    const outs = Array.from({ length: opts.outputs ?? 1 }, (_, i) => this.unique(`${nodeName}_output_${i}`));
    this.nodes.push(node(opType, inputs, outs, nodeName, attrs, opts.domain));
    return outs;
  }
  /** Adds a one-output node; returns the output name. */
  op(opType: string, inputs: string[], name: string, attrs: Record<string, AttrValue | undefined> = {}, domain?: string): string {
    return this.add(opType, inputs, name, attrs, { domain })[0];
  }

  /** Renames a value everywhere (to give graph outputs their public names). */
  rename(from: string, to: string): void {
    for (const n of this.nodes) {
      n.input = (n.input ?? []).map((v) => (v === from ? to : v));
      n.output = (n.output ?? []).map((v) => (v === from ? to : v));
    }
    this.used.add(to);
  }
}
