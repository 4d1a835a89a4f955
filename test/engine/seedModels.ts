// The seed document's two example models (SPEC §9), shared by tests.
import { nn, Tensor } from '../../src/engine/index';

/** Seed §3.1: ConvTranspose2d(10, 10, 5, 5, 2, 4, 2, True, 2) → Conv2d(groups 2) → BN → view → Linear. */
export class ModelA extends nn.Module {
  transpose = new nn.ConvTranspose2d(10, 10, 5, { stride: 5, padding: 2, outputPadding: 4, groups: 2, bias: true, dilation: 2 });
  conv = new nn.Conv2d(10, 10, 3, { stride: 1, padding: 1, bias: true, groups: 2 });
  bn = new nn.BatchNorm2d(10);
  fc = new nn.Linear(10 * 254 * 254, 100);
  forward(x: Tensor): Tensor {
    x = this.transpose(x);
    x = this.conv(x);
    x = this.bn(x);
    const [n, c, h, w] = x.shape;
    x = x.view(n, c * h * w);
    return this.fc(x);
  }
}

/** Seed §3.2: conv→bn→relu, x − 1, conv1→relu1, conv2→bn1→relu2, view, fc(250, 100). Input [1, 10, 5, 5]. */
export class ModelB extends nn.Module {
  conv = new nn.Conv2d(10, 10, 3, { stride: 1, padding: 1, bias: true });
  bn = new nn.BatchNorm2d(10);
  relu = new nn.ReLU();
  conv1 = new nn.Conv2d(10, 10, 3, { stride: 1, padding: 1, bias: true });
  relu1 = new nn.ReLU();
  conv2 = new nn.Conv2d(10, 10, 3, { stride: 1, padding: 1, bias: true });
  bn1 = new nn.BatchNorm2d(10);
  relu2 = new nn.ReLU();
  fc = new nn.Linear(250, 100);
  forward(x: Tensor): Tensor {
    x = this.relu(this.bn(this.conv(x)));
    x = x.sub(1);
    x = this.relu1(this.conv1(x));
    x = this.relu2(this.bn1(this.conv2(x)));
    const [n, c, h, w] = x.shape;
    x = x.view([n, c * h * w]);
    return this.fc(x);
  }
}
