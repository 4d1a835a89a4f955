// The sequence demo as a model file (what `linger demo --model gru` trains): a Fashion-MNIST image
// read row by row, 28 time steps of 28 features. Open it in VS Code and run "Linger: Trace Model
// File", or export a checkpoint of it: `linger export examples/sequence_gru.ts --checkpoint
// checkpoints/demo-gru/fixed.safetensors --dialect thinker -o gru.onnx`.
import { nn, Tensor } from 'linger-studio';

class SequenceGRU extends nn.Module {
  conv = new nn.Conv1d(28, 32, 3, { padding: 1 });
  bn = new nn.BatchNorm1d(32);
  relu = new nn.ReLU();
  gru = new nn.GRU(32, 64, { batchFirst: true });
  fc = new nn.Linear(64, 10);

  forward(x: Tensor): Tensor {
    // [N, 1, 28 rows, 28 columns] → the columns as channels, the rows as time: [N, 28, 28]
    const seq = x.reshape([-1, 28, 28]).transpose(1, 2);
    const y = this.relu(this.bn(this.conv(seq))).transpose(1, 2); // [N, 28 steps, 32]
    const [, hN] = this.gru(y);
    return this.fc(hN.reshape([-1, 64]));
  }
}

export const inputShape = [1, 1, 28, 28];
export function createModel(): nn.Module {
  return new SequenceGRU();
}
