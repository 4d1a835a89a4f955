// The seed's Model B (SPEC §9) as a model file: conv→bn→relu, x − 1, conv1→relu1, conv2→bn1→relu2, fc.
import { nn, Tensor } from 'linger-studio';

class Model extends nn.Module {
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
    return this.fc(x.view([n, c * h * w]));
  }
}

export const inputShape = [1, 10, 5, 5];
export function createModel(): nn.Module {
  return new Model();
}
