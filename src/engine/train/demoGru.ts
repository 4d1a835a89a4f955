import { Module } from '../nn/module';
import { Conv1d } from '../nn/conv';
import { BatchNorm1d } from '../nn/batchnorm';
import { ReLU } from '../nn/activation';
import { Linear } from '../nn/linear';
import { GRU } from '../nn/recurrent';
import { Tensor } from '../tensor';

/**
 * The sequence demo (and its PyTorch peer in scripts/bench/torch_peer.py and torch_gru_demo.py): an image read row by
 * row, 28 time steps of 28 features ("sequential MNIST"). Conv1d(28→32, 3) over time–BN–ReLU,
 * GRU(32→64), the last hidden state into Linear(64→10). Input [N, 1, 28, 28], as the CNN demo.
 */
export class DemoGRU extends Module {
  conv = new Conv1d(28, 32, 3, { padding: 1 });
  bn = new BatchNorm1d(32);
  relu = new ReLU();
  gru = new GRU(32, 64, { batchFirst: true });
  fc = new Linear(64, 10);

  forward(x: Tensor): Tensor {
    // [N, 1, 28 rows, 28 columns] → features (columns) as channels, rows as time: [N, 28, 28]
    const seq = x.reshape([-1, 28, 28]).transpose(1, 2);
    const y = this.relu(this.bn(this.conv(seq))).transpose(1, 2); // [N, T, 32]
    const [, hN] = this.gru(y) as [Tensor, Tensor];
    return this.fc(hN.reshape([-1, 64]));
  }
}
