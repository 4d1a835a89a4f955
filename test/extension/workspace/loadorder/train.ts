// @ts-nocheck -- a fixture of the load-order analyzer: parsed, never compiled
import { linger, randn } from 'linger-studio';
import { Net } from './net';

async function main(): Promise<void> {
  const model = new Net();
  linger.traceLayers(model, model, randn([1, 10, 10, 10]), { fuseBn: true });
  model.loadStateDict(await linger.load('checkpoints/exp1/float.safetensors')); // expect: LINGER001
  linger.normalizeLayers(model, { normalizeWeightValue: 8 });
  linger.init(model, { parameterBits: 8, dataBits: 8 });
  model.loadStateDict(await linger.load('checkpoints/exp1/traced.safetensors'));
}

void main();
