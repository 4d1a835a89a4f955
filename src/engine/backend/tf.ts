// The one place the engine imports TensorFlow.js from. tfjs-core alone registers no gradients
// and no chained tensor methods; the side-effect imports below add both, plus the pure-JS cpu
// backend (always available) and the wasm backend (fast, single thread under Node).
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import '@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';

export { tf };
