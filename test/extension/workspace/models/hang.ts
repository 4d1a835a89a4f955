// A model whose forward never returns: tracing it can only be cancelled by ending the engine process.
import { nn, Tensor } from 'linger-studio';

class Stuck extends nn.Module {
  fc = new nn.Linear(4, 2);
  forward(x: Tensor): Tensor {
    for (;;) { /* never returns */ }
    return this.fc(x); // eslint-disable-line no-unreachable
  }
}
export const inputShape = [1, 4];
export function createModel(): nn.Module {
  return new Stuck();
}
