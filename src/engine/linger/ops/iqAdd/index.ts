// linger's iqAdd: a tensor–tensor add of quantized tensors in the fixed stage, one IQAdd layer per
// add of the traced graph (a child of the calling module, linger's name).
import { defineIntOp, defineTensorOp } from '../registry';
import { IQAdd } from './layer';
import { qdqIqAdd, thinkerIqAdd } from './lower';

export { IQAdd } from './layer';

defineIntOp({ name: 'IQAdd', intClass: IQAdd, lower: { qdq: qdqIqAdd, thinker: thinkerIqAdd } });

defineTensorOp({
  op: 'add',
  list: 'linger_iq',
  child: 'iqadd__default_index_',
  // the hook sees tensor–tensor adds only (a tensor made in forward is a constant of NaN/null)
  matches: (n) => {
    const o = n.inputs[1] as { constant?: number | null } | undefined;
    return !!o && !(typeof o.constant === 'number' && !Number.isNaN(o.constant));
  },
  make: (bits) => new IQAdd(bits),
  call: (layer, args) =>
    layer instanceof IQAdd && args.every((a) => a.quantScale !== undefined) ? (layer(args[0], args[1]) as never) : undefined,
});
