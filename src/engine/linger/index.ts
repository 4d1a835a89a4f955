// The `linger` namespace of the public API (SPEC §2).
export { traceLayers, normalizeLayers, disableNormalize, graphOf, LINGER_LOAD_ORDER, LINGER_STAGE_ORDER } from './transforms';
export type { TraceOptions, NormalizeOptions } from './transforms';
export type { Graph, GraphNode, TensorRef } from '../trace/graph';
export { stageOfDict } from '../state/stateDict';
