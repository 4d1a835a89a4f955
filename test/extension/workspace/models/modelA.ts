// The seed's Model A (SPEC §9) as a model file: createModel() and inputShape.
import { nn, Tensor } from 'linger-studio';

class Model extends nn.Module {
  transpose = new nn.ConvTranspose2d(10, 10, 5, { stride: 5, padding: 2, outputPadding: 4, groups: 2, bias: true, dilation: 2 });
  conv = new nn.Conv2d(10, 10, 3, { stride: 1, padding: 1, bias: true, groups: 2 });
  bn = new nn.BatchNorm2d(10);
  fc = new nn.Linear(10 * 254 * 254, 100);
  forward(x: Tensor): Tensor {
    x = this.transpose(x);
    x = this.conv(x);
    x = this.bn(x);
    const [n, c, h, w] = x.shape;
    return this.fc(x.view(n, c * h * w));
  }
}

export const inputShape = [1, 10, 50, 50];
export function createModel(): nn.Module {
  return new Model();
}
