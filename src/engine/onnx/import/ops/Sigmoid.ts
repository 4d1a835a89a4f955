// Sigmoid: nn.Sigmoid where its scope is a module of its own, else the tensor op.
import { Sigmoid } from '../../../nn/activation';
import { def } from '../registry';

def({ op: 'Sigmoid', module: { make: () => new Sigmoid() }, run: ({ x }) => [x().sigmoid()] });
