import { Module } from '../nn/module';
import { Conv2d } from '../nn/conv';
import { BatchNorm2d } from '../nn/batchnorm';
import { ReLU } from '../nn/activation';
import { MaxPool2d } from '../nn/pooling';
import { Flatten } from '../nn/misc';
import { Linear } from '../nn/linear';
import { Tensor } from '../tensor';

/**
 * The demo CNN (and the PyTorch peer in benchmarks): conv(1→16)–BN–ReLU–pool, conv(16→32)–BN–
 * ReLU–pool, flatten, fc 1568→128–ReLU, fc 128→10. Input [N, 1, 28, 28].
 */
export class DemoCNN extends Module {
  conv1 = new Conv2d(1, 16, 3, { padding: 1 });
  bn1 = new BatchNorm2d(16);
  relu1 = new ReLU();
  pool1 = new MaxPool2d(2);
  conv2 = new Conv2d(16, 32, 3, { padding: 1 });
  bn2 = new BatchNorm2d(32);
  relu2 = new ReLU();
  pool2 = new MaxPool2d(2);
  flatten = new Flatten();
  fc1 = new Linear(32 * 7 * 7, 128);
  relu3 = new ReLU();
  fc2 = new Linear(128, 10);

  forward(x: Tensor): Tensor {
    x = this.pool1(this.relu1(this.bn1(this.conv1(x))));
    x = this.pool2(this.relu2(this.bn2(this.conv2(x))));
    x = this.flatten(x);
    return this.fc2(this.relu3(this.fc1(x)));
  }
}

export const DEMO_INPUT_SHAPE = [1, 1, 28, 28];
export const DEMO_RECIPE = { lr: 0.05, momentum: 0.9, batchSize: 64 } as const;
