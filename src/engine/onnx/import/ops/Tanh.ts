// Tanh: nn.Tanh where its scope is a module of its own, else the tensor op.
import { Tanh } from '../../../nn/activation';
import { def } from '../registry';

def({ op: 'Tanh', module: { make: () => new Tanh() }, run: ({ x }) => [x().tanh()] });
