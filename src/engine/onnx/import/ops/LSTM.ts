// LSTM as PyTorch exports nn.LSTM: gate rows i,o,f,c (PyTorch's i,f,g,o), no peepholes, no coupled
// input/forget gate. recurrent.ts chains the layers' nodes into one nn.LSTM.
import { LSTM } from '../../../nn/recurrent';
import { def } from '../registry';

def({
  op: 'LSTM',
  recurrent: {
    gates: 4,
    order: [0, 3, 1, 2],
    activations: ['Sigmoid', 'Tanh', 'Tanh'],
    cellState: true,
    checkAttrs: (n) => {
      if (n.attrs.int('input_forget', 0) !== 0) throw new Error(`${n.what}: input_forget=1 (coupled gates) is not supported`);
    },
    checkInputs: (n) => {
      if (n.inputs[7]) throw new Error(`${n.what}: peepholes (input P) are not supported (PyTorch's LSTM has none)`);
    },
    make: (inputSize, hidden, opts) => new LSTM(inputSize, hidden, opts),
  },
});
