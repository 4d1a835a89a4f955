// A 300-module model (150 Linear + ReLU pairs in nested Sequentials) for the Model view's timing.
import { nn } from 'linger-studio';

export const inputShape = [2, 16];
export function createModel(): nn.Module {
  const blocks: nn.Module[] = [];
  for (let b = 0; b < 15; b++) {
    const layers: nn.Module[] = [];
    for (let i = 0; i < 10; i++) layers.push(new nn.Linear(16, 16), new nn.ReLU());
    blocks.push(new nn.Sequential(...layers));
  }
  return new nn.Sequential(...blocks);
}
