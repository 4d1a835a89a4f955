// Relu: nn.ReLU where its scope is a module of its own, else the tensor op.
import { ReLU } from '../../../nn/activation';
import { def } from '../registry';

def({ op: 'Relu', module: { make: () => new ReLU() }, run: ({ x }) => [x().relu()] });
