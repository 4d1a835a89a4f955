// A data-parallel worker (dist/trainWorker.js): builds its replica of the coordinator's model, then
// takes its rows of every step until told to stop (dataParallel.ts has the protocol).
import { workerData } from 'node:worker_threads';
import { tf } from '../backend/tf';
import { initBackend } from '../backend/select';
import { rng } from '../random';
import { CheckpointMetadata } from '../state/checkpoint';
import { applyCheckpointTransforms } from '../state/replay';
import { Tensor } from '../tensor';
import { CMD, H, lossFunction, offsetsOf, rowsOf, shardTensor, WorkerInit } from './dataParallel';
import { GroupAbortedError, ProcessGroup } from './group';
import './builders'; // every way to rebuild a model, registered before the replica is built
import { buildFromRecipe } from './recipe';
import { inShard } from '../backend/shard';

async function main(init: WorkerInit): Promise<void> {
  const group = new ProcessGroup(init.rank, init.size, init.group);
  try {
    await initBackend();
    const model = await buildFromRecipe(init.recipe);
    const meta = { stage: init.stage, transforms: init.transforms, moduleTree: init.moduleTree } as unknown as CheckpointMetadata;
    const dummy = new Tensor(tf.tensor(init.dummy.data, init.dummy.shape, init.dummy.dtype));
    if (init.transforms.length) applyCheckpointTransforms(model, meta, dummy, "the coordinator's model");
    const sd = Object.fromEntries(init.state.map(([k, v]) => [k, new Tensor(tf.tensor(v.data, v.shape, v.dtype))]));
    model.loadStateDict(sd);
    for (const t of Object.values(sd)) t.dispose();
    // the replica must be the coordinator's model, layer for layer
    const mine = new Map([...model.namedModules()].map(([p, m]) => [p, `${m.typeName()}(${m.extraRepr()})`]));
    for (const e of init.moduleTree) {
      const got = mine.get(e.path);
      if (got !== `${e.type}(${e.repr})`)
        throw new Error(`the rebuilt model differs at '${e.path || '(root)'}': ${got ?? 'missing'} instead of ${e.type}(${e.repr})`);
    }
    run(init, group, model);
  } catch (e) {
    if (e instanceof GroupAbortedError && e.byRank !== init.rank) return; // the coordinator stopped the run
    init.port.postMessage({ error: e instanceof Error ? `${e.name === 'Error' ? '' : `${e.name}: `}${e.message}` : String(e) });
    group.abort();
  } finally {
    init.port.close();
  }
}

function run(init: WorkerInit, group: ProcessGroup, model: import('../nn/module').Module): void {
  const { bufs, rank, size } = init;
  const h = new Int32Array(bufs.header);
  const params = model.parameters();
  const offsets = offsetsOf(params);
  const total = offsets.at(-1)!;
  const trainedVars = init.trained.map((i) => params[i].variable);
  const lossFn = lossFunction(init.loss);
  const buffers = model.buffers();
  group.barrier(); // ready
  for (;;) {
    group.barrier(); // a command is in the header
    const cmd = h[H.cmd];
    if (cmd === CMD.stop) return;
    if (cmd === CMD.state) {
      const state = Object.fromEntries(
        Object.entries(model.stateDict()).map(([k, t]) => [k, { dtype: t.dtype, shape: [...t.shape], data: t.dataSync() }]),
      );
      init.port.postMessage({ state });
      group.barrier();
      continue;
    }
    if (cmd === CMD.local) {
      group.barrier(); // rank 0's step is done
      readParams(bufs.params, params, offsets);
      const flat = new Float64Array(bufs.buffers);
      let off = 0;
      for (const b of buffers) {
        const v = flat.subarray(off, off + b.size);
        tf.tidy(() => b.raw.assign(tf.tensor(b.dtype === 'int32' ? Int32Array.from(v) : Float32Array.from(v), b.raw.shape, b.dtype)));
        off += b.size;
      }
      continue;
    }
    // a step: this rank's rows, the coordinator's random state (dropout masks)
    const n = h[H.rows];
    const [start, end] = rowsOf(rank, size, n);
    rng().setState(new Float64Array(bufs.rng));
    model.train();
    const xs = shardTensor(bufs.x, h, 'x', start, end);
    const ys = shardTensor(bufs.y, h, 'y', start, end);
    try {
      tf.tidy(() => {
        const { value, grads } = inShard({ group, start, end, total: n }, () =>
          tf.variableGrads(() => tf.reshape(lossFn(model(xs) as Tensor, ys).mul((end - start) / n).raw, []) as tf.Scalar, trainedVars),
        );
        const slot = new Float32Array(bufs.grads, rank * total * 4, total);
        init.trained.forEach((i, k) => {
          const g = grads[trainedVars[k].name];
          if (g) slot.set(g.dataSync() as Float32Array, offsets[i]);
          else slot.fill(0, offsets[i], offsets[i + 1]);
        });
        new Float64Array(bufs.losses)[rank] = value.dataSync()[0];
      });
    } finally {
      xs.dispose();
      ys.dispose();
    }
    group.barrier(); // gradients written
    group.barrier(); // rank 0 has stepped: new parameters
    readParams(bufs.params, params, offsets);
  }
}

function readParams(buf: SharedArrayBuffer, params: import('../nn/module').Parameter[], offsets: number[]): void {
  const flat = new Float32Array(buf);
  tf.tidy(() => params.forEach((p, i) => p.raw.assign(tf.tensor(flat.slice(offsets[i], offsets[i + 1]), p.raw.shape))));
}

void main(workerData as WorkerInit);
