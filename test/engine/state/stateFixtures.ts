// Shared by the state tests: engine-side fixtures, and the PyTorch interpreter when it has torch.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DemoCNN, linger, manualSeed, nn, rand, Tensor, tensor, tidy } from '../../../src/engine/index';

export const ROOT = path.join(__dirname, '..', '..', '..');
export const STATE_FIXTURES = path.join(ROOT, 'test', 'fixtures', 'state');
export const FIXTURE_SCRIPT = path.join(ROOT, 'scripts', 'golden', 'make_state_fixtures.py');
export const PYTHON = process.env.LINGER_PYTHON ?? '/usr/bin/python3';

/** A tensor as fixture JSON: shape and row-major values. */
export interface JsonTensor {
  shape: number[];
  data: number[];
}
export const toJson = (t: Tensor): JsonTensor => ({ shape: t.shape, data: Array.from(t.dataSync()) });
export const fromJson = (j: JsonTensor): Tensor => tensor(Float32Array.from(j.data), j.shape);

/** A DemoCNN whose BN affine parameters and running statistics are all non-trivial. */
export function trainedDemo(seed: number): DemoCNN {
  manualSeed(seed);
  const m = new DemoCNN();
  for (const bn of [m.bn1, m.bn2]) {
    bn.weight!.assignLogical(rand([bn.numFeatures]).mul(1).add(0.5));
    bn.bias!.assignLogical(rand([bn.numFeatures]).mul(0.4).sub(0.2));
  }
  tidy(() => {
    for (let i = 0; i < 3; i++) m(rand([8, 1, 28, 28]));
  });
  return m;
}

/** Writes a float checkpoint of `trainedDemo(seed)` and its eval output on a fixed input: the files PyTorch checks. */
export async function writeEngineDemo(dir: string, name: string, seed = 5): Promise<{ checkpoint: string; io: string; y: Tensor }> {
  const m = trainedDemo(seed);
  m.eval();
  manualSeed(seed + 1);
  const x = rand([2, 1, 28, 28]);
  const y = m(x) as Tensor;
  const checkpoint = await linger.save(m, path.join(dir, `${name}.safetensors`), { inputShape: [1, 1, 28, 28] });
  const io = path.join(dir, `${name}.json`);
  fs.writeFileSync(io, JSON.stringify({ x: toJson(x), y: toJson(y) }) + '\n');
  return { checkpoint, io, y };
}

let torchChecked: string | null | undefined;
/** Why PyTorch cannot be used here, or null when python3 imports torch. */
export function torchUnavailable(): string | null {
  if (torchChecked === undefined) {
    const r = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' });
    torchChecked = r.error
      ? `${PYTHON} not found`
      : r.status !== 0
        ? `${PYTHON} has no torch (${r.stderr.trim().split('\n').pop()})`
        : null;
  }
  return torchChecked;
}

/** A small model with every kind of state a checkpoint carries (conv, BN with int counter, linear). */
export class TinyNet extends nn.Module {
  conv = new nn.Conv2d(2, 4, 3, { padding: 1 });
  bn = new nn.BatchNorm2d(4);
  relu = new nn.ReLU();
  flatten = new nn.Flatten();
  fc = new nn.Linear(4 * 4 * 4, 3);
  forward(x: Tensor): Tensor {
    return this.fc(this.flatten(this.relu(this.bn(this.conv(x)))));
  }
}
export const TINY_INPUT = [2, 2, 4, 4];
