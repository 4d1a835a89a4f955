import { Tensor } from '../tensor';
import { Module } from './module';

/** PyTorch's Sequential: children named '0', '1', … (or by the keys of an object). */
export class Sequential extends Module {
  constructor(...modules: Module[] | [Record<string, Module>]) {
    super();
    const self = this as unknown as Record<string, Module>;
    if (modules.length === 1 && !(modules[0] instanceof Module)) {
      for (const [k, m] of Object.entries(modules[0] as Record<string, Module>)) self[k] = m;
    } else {
      (modules as Module[]).forEach((m, i) => {
        self[String(i)] = m;
      });
    }
  }
  get length(): number {
    return this.children().length;
  }
  at(i: number): Module {
    return this.children().at(i)!;
  }
  forward(x: Tensor): Tensor {
    let y = x;
    for (const m of this.children()) y = m(y);
    return y;
  }
}

/** PyTorch's ModuleList: an indexable list of registered modules. */
export class ModuleList extends Module {
  constructor(modules: Module[] = []) {
    super();
    modules.forEach((m) => this.append(m));
  }
  get length(): number {
    return this.children().length;
  }
  at(i: number): Module {
    return this.children().at(i)!;
  }
  append(m: Module): this {
    (this as unknown as Record<string, Module>)[String(this.length)] = m;
    return this;
  }
  [Symbol.iterator](): Iterator<Module> {
    return this.children()[Symbol.iterator]();
  }
  forward(): never {
    throw new Error('ModuleList is not callable; iterate over it in your forward');
  }
}
