// A table keyed by module class, looked up by the nearest registered class on an instance's
// prototype chain — how the registries (linger's ops, normalize layers, ONNX lowerings) find what
// applies to a module. A user's subclass of a registered class is found through its base, and a
// class registered nearer wins over its bases (Conv2dInt before Conv2d, which it extends), so no
// lookup depends on the order of `instanceof` tests. See docs/architecture.md.
import type { Module } from './module';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type ModuleClass = abstract new (...args: any[]) => Module;

export class ClassTable<V> {
  private readonly byClass = new Map<unknown, V>();

  set(cls: ModuleClass, value: V): void {
    if (this.byClass.has(cls)) throw new Error(`internal: ${cls.name} is registered twice`);
    this.byClass.set(cls, value);
  }

  /** The value of the nearest registered class of `m`, or undefined. */
  lookup(m: object): V | undefined {
    for (let p = Object.getPrototypeOf(m); p && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
      const v = this.byClass.get(p.constructor);
      if (v !== undefined) return v;
    }
    return undefined;
  }

  /** The nearest registered class of `m` with its value: which class decided. */
  nearest(m: object): { cls: ModuleClass; value: V } | undefined {
    for (let p = Object.getPrototypeOf(m); p && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
      const v = this.byClass.get(p.constructor);
      if (v !== undefined) return { cls: p.constructor as ModuleClass, value: v };
    }
    return undefined;
  }

  values(): V[] {
    return [...this.byClass.values()];
  }
}
