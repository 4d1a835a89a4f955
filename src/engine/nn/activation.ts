import { tf } from '../backend/tf';
import { record, Tensor } from '../tensor';
import { Module } from './module';

abstract class Elementwise extends Module {
  constructor(readonly inplace = false) {
    super();
  }
  extraRepr(): string {
    return this.inplace ? 'inplace=True' : '';
  }
}

export class ReLU extends Elementwise {
  forward(x: Tensor): Tensor {
    return x.relu();
  }
}
export class ReLU6 extends Elementwise {
  forward(x: Tensor): Tensor {
    return record('relu6', [x], () => new Tensor(tf.relu6(x.raw), x.perm));
  }
}
export class Sigmoid extends Module {
  forward(x: Tensor): Tensor {
    return x.sigmoid();
  }
}
export class Tanh extends Module {
  forward(x: Tensor): Tensor {
    return x.tanh();
  }
}
export class Identity extends Module {
  forward(x: Tensor): Tensor {
    return x;
  }
}
