// Writes test/fixtures/state/engine_democnn_float.{safetensors,json}: a float checkpoint written by
// the engine and its eval output, which scripts/golden/make_state_fixtures.py loads into PyTorch.
//   node --import tsx test/engine/state/makeEngineFixture.ts
import { initBackend } from '../../../src/engine/index';
import { STATE_FIXTURES, writeEngineDemo } from './stateFixtures';

void (async () => {
  await initBackend();
  const r = await writeEngineDemo(STATE_FIXTURES, 'engine_democnn_float');
  console.log(`wrote ${r.checkpoint} and ${r.io}`);
})();
