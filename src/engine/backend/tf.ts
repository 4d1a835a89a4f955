// The one place the engine imports TensorFlow.js from. The union package registers every
// gradient and chained tensor method (tfjs-core alone registers neither) and the cpu backend; it
// is the same tfjs-core instance that @tensorflow/tfjs-node registers its backend into.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';

export { tf };
