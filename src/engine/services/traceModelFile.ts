// A TypeScript/JavaScript model file traced as the Model view shows it: the module tree before and
// after traceLayers, where each module is defined, and the recorded graph (the engine process and
// `linger trace` share it; a Python model file is services/pythonModel.ts's).
import type { TraceResult } from '../host/protocol';
import { initBackend } from '../backend/select';
import { tf } from '../backend/tf';
import { graphOf, traceLayers, TraceOptions } from '../linger/transforms';
import { exampleOf, loadModelFile } from '../modelFile';
import { moduleTree } from '../state/checkpoint';
import * as fs from 'node:fs';

/** 0-based line of `<name> = new` (a field) in the model file, for "Reveal in editor". */
export function definitionLines(file: string, paths: string[]): Record<string, number> {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const out: Record<string, number> = {};
  for (const p of paths) {
    const name = p.split('.').pop();
    if (!name) continue;
    const re = new RegExp(`(^|[\\s.])${name.replace(/[$]/g, '\\$')}\\s*[:=]`);
    const i = lines.findIndex((l) => re.test(l) && /new\s|nn\./.test(l));
    if (i >= 0) out[p] = i;
  }
  return out;
}

export async function traceModelFile(file: string, traceOptions: TraceOptions = {}): Promise<TraceResult> {
  await initBackend();
  const t0 = performance.now();
  const mf = await loadModelFile(file);
  const model = mf.createModel();
  const before = { label: 'Before traceLayers', stage: model.stage(), modules: moduleTree(model), text: String(model) };
  tf.tidy(() => {
    traceLayers(model, model, exampleOf(mf), traceOptions);
  });
  const after = { label: 'After traceLayers', stage: model.stage(), modules: moduleTree(model), text: String(model) };
  return {
    file: mf.file,
    inputShape: mf.inputShape,
    before,
    after,
    definitions: definitionLines(mf.file, before.modules.map((e) => e.path).filter(Boolean)),
    graph: graphOf(model),
    ms: performance.now() - t0,
  };
}
