// Every way a data-parallel worker can rebuild a model (recipe.ts), registered: the worker imports
// this module before it builds its replica. Model files register their own rebuilder (modelFile.ts);
// the ONNX importer's is registered here, so that recipe.ts imports neither and neither imports
// the worker. The coordinator never needs this: it only reads the recipes its models carry.
import '../index'; // hands the engine to model files ('linger-studio' in a user's file: modelFile.ts)
import '../modelFile';
import { importOnnx } from '../onnx/import';
import { registerRecipeBuilder } from './recipe';

registerRecipeBuilder('onnx', (r) => importOnnx(r.file, r.inputShape ? { inputShape: r.inputShape } : {}));
