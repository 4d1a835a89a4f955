// linger-studio: the engine's public API (SPEC §2), listed in api.ts. This entry point adds one
// thing: it hands that API to the model-file loader, which maps `import … from 'linger-studio'` in
// a user's model file to it (modelFile.ts, docs/architecture.md). The loader is part of the API
// (linger.loadModelFile), so it cannot import the API itself without an import cycle.
import * as api from './api';
import { provideEngine } from './modelFile';

export * from './api';

provideEngine(api);
