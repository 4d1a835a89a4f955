// The shard state moved to backend/shard.ts (below the kernels, which must not import parallel/).
// This re-export keeps the layers that still import it from here (nn/misc.ts, nn/batchnorm.ts and
// linger/*) working until they import '../backend/shard'; then this file goes.
export { batchMax, currentShard, inShard, wholeBatchCount } from '../backend/shard';
export type { Shard, ShardGroup } from '../backend/shard';
