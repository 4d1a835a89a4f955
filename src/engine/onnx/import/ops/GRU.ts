// GRU as PyTorch exports nn.GRU: gate rows z,r,h (PyTorch's r,z,n) with linear_before_reset=1
// (PyTorch's n-gate). recurrent.ts chains the layers' nodes into one nn.GRU.
import { GRU } from '../../../nn/recurrent';
import { def } from '../registry';

def({
  op: 'GRU',
  recurrent: {
    gates: 3,
    order: [1, 0, 2],
    activations: ['Sigmoid', 'Tanh'],
    cellState: false,
    checkAttrs: (n) => {
      if (n.attrs.int('linear_before_reset', 0) !== 1)
        throw new Error(`${n.what}: linear_before_reset=0 is not supported (PyTorch's GRU is linear_before_reset=1)`);
    },
    checkInputs: (n) => {
      if (n.inputs.length > 6) throw new Error(`${n.what}: a GRU takes at most 6 inputs, got ${n.inputs.length}`);
    },
    make: (inputSize, hidden, opts) => new GRU(inputSize, hidden, opts),
  },
});
