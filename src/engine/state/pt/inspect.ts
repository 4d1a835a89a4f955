// `linger inspect x.pt` (docs/pt-checkpoints.md): the same report as services/inspect.ts makes for
// safetensors, from a torch.save file; cli.ts sends a torch.save file here, anything else on.
import * as fs from 'node:fs';
import { runInspect } from '../../cli/inspect';
import { formatInspect, InspectResult, summarize, TensorSummary } from '../../services/inspect';
import { layerQuantSummaries } from '../../services/inspectLayers';
import { decodeTensor } from '../checkpoint';
import { parentProblem, parseCheckpointMetadata } from '../checkpoint';
import { CheckpointFormatError } from '../safetensors';
import { fileHead, readPt, torchFormatOf } from './read';
import { inferredStage } from './index';

/** Reads and summarizes a torch.save checkpoint (throws CheckpointFormatError on a bad file). */
export function inspectPt(file: string): InspectResult {
  const f = readPt(file);
  const names = [...f.tensors.keys()];
  const meta = parseCheckpointMetadata(f.metadata, names, file);
  if (f.metadata['linger.stage'] === undefined) meta.stage = inferredStage(names, meta.stage);
  const tensors: TensorSummary[] = [];
  let values = 0;
  for (const [name, r] of f.tensors) {
    tensors.push(summarize(name, r));
    values += r.shape.reduce((a, b) => a * b, 1);
  }
  const { raw, graph, ...rest } = meta;
  const nodes = (graph as { nodes?: unknown } | undefined)?.nodes;
  const problem = parentProblem(file, meta);
  const valuesOf = (k: string) => {
    const r = f.tensors.get(k);
    return r ? Array.from(decodeTensor(k, r, file).values) : undefined;
  };
  return {
    layers: layerQuantSummaries(meta.moduleTree, valuesOf),
    file,
    fileSize: fs.statSync(file).size,
    metadata: {
      ...rest,
      format: rest.format || 'torch.save (PyTorch zip checkpoint)',
      ...(Array.isArray(nodes) ? { graphNodes: nodes.length } : {}),
      ...(raw['linger.stage'] === undefined ? { stageInferred: true } : {}),
    },
    otherMetadata: Object.fromEntries(Object.entries(raw).filter(([k]) => !k.startsWith('linger.'))),
    tensors,
    values,
    ...(problem ? { parentProblem: problem } : {}),
  };
}

export function isTorchFile(file: string): boolean {
  try {
    return torchFormatOf(fileHead(file)) !== undefined;
  } catch {
    return false;
  }
}

/** `linger inspect`: a torch.save file is reported here, anything else by cli/inspect.ts. */
export async function runInspectAny(args: string[], out: (s: string) => void, err: (s: string) => void = out): Promise<number> {
  const positionals = args.filter((a) => !a.startsWith('-'));
  const flags = args.filter((a) => a.startsWith('-'));
  if (positionals.length !== 1 || flags.some((f) => f !== '--json') || !isTorchFile(positionals[0])) return runInspect(args, out, err);
  try {
    const r = inspectPt(positionals[0]);
    out(flags.length ? JSON.stringify(r, null, 2) : formatInspect(r));
    return 0;
  } catch (e) {
    if (e instanceof CheckpointFormatError) {
      err(`linger inspect: ${e.message}`);
      return 1;
    }
    throw e;
  }
}
