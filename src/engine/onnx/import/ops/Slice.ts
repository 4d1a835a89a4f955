// Slice: starts/ends/axes/steps from attributes before opset 10, from constant inputs from it. On a
// computed tensor positive steps only (unit steps as recorded narrows); on constants any step.
import { tf } from '../../../backend/tf';
import { Tensor } from '../../../tensor';
import { fillConst, intsOf, normAxis, strides } from '../constEval';
import { def } from '../registry';
import { asConst } from '../values';

def({
  op: 'Slice',
  run: ({ n, ins, opset, x }) => {
    const t = x();
    const { what, attrs } = n;
    const s = t.shape,
      r = s.length;
    const ints = (i: number, label: string) =>
      ins[i] === undefined ? undefined : intsOf(asConst(ins[i], `${what} ${label}`), `${what} ${label}`);
    const starts = opset >= 10 ? (ints(1, 'starts') ?? []) : (attrs.ints('starts') ?? []);
    const ends = opset >= 10 ? (ints(2, 'ends') ?? []) : (attrs.ints('ends') ?? []);
    const axes = (opset >= 10 ? ints(3, 'axes') : attrs.ints('axes')) ?? starts.map((_, i) => i);
    const steps = (opset >= 10 ? ints(4, 'steps') : undefined) ?? starts.map(() => 1);
    if (starts.length !== ends.length || axes.length !== starts.length || steps.length !== starts.length)
      throw new Error(`${what}: starts, ends, axes and steps differ in length`);
    const begin = s.map(() => 0),
      end = [...s],
      stride = s.map(() => 1);
    axes.forEach((a0, i) => {
      const a = a0 < 0 ? a0 + r : a0;
      if (a < 0 || a >= r) throw new Error(`${what}: axis ${a0} is out of range for rank ${r}`);
      if (steps[i] < 1) throw new Error(`${what}: slicing a computed tensor with step ${steps[i]} is not supported`);
      const d = s[a];
      const clamp = (v: number) => Math.max(0, Math.min(d, v < 0 ? v + d : v));
      begin[a] = clamp(starts[i]);
      end[a] = Math.max(begin[a], clamp(ends[i]));
      stride[a] = steps[i];
    });
    // unit steps are recorded narrows, which trace and export
    if (stride.every((v) => v === 1)) return [begin.reduce((v, b, a) => (b === 0 && end[a] === s[a] ? v : v.narrow(a, b, end[a] - b)), t)];
    return [new Tensor(tf.stridedSlice(t.logical(), begin, end, stride))];
  },
  fold: ({ n, ins, opset, need }) => {
    const { what, attrs } = n;
    const x = need(0);
    const r = x.dims.length;
    let starts: number[], ends: number[], axes: number[] | undefined, steps: number[] | undefined;
    if (opset >= 10) {
      starts = intsOf(need(1), `${what} starts`);
      ends = intsOf(need(2), `${what} ends`);
      axes = ins[3] ? intsOf(ins[3], `${what} axes`) : undefined;
      steps = ins[4] ? intsOf(ins[4], `${what} steps`) : undefined;
    } else {
      starts = attrs.ints('starts') ?? [];
      ends = attrs.ints('ends') ?? [];
      axes = attrs.ints('axes');
    }
    const ax = (axes ?? starts.map((_, i) => i)).map((a) => normAxis(a, r, what));
    if (starts.length !== ends.length || ax.length !== starts.length) throw new Error(`${what}: starts, ends and axes differ in length`);
    const lo = x.dims.map(() => 0),
      step = x.dims.map(() => 1),
      count = [...x.dims];
    ax.forEach((a, i) => {
      const d = x.dims[a];
      const s = steps?.[i] ?? 1;
      if (s === 0) throw new Error(`${what}: step 0`);
      const clampI = (v: number, min: number, max: number) => Math.max(min, Math.min(max, v));
      let b = starts[i] < 0 ? starts[i] + d : starts[i];
      let e = ends[i] < 0 ? ends[i] + d : ends[i];
      if (s > 0) {
        b = clampI(b, 0, d);
        e = clampI(e, 0, d);
        count[a] = Math.max(0, Math.ceil((e - b) / s));
      } else {
        b = clampI(b, -1, d - 1);
        e = clampI(e, -1, d - 1);
        count[a] = Math.max(0, Math.ceil((b - e) / -s));
      }
      lo[a] = b;
      step[a] = s;
    });
    const is = strides(x.dims),
      os = strides(count);
    return [
      fillConst(count, x.dtype, (i) => {
        let j = 0;
        for (let d = 0; d < r; d++) j += (lo[d] + (Math.floor(i / os[d]) % count[d]) * step[d]) * is[d];
        return x.data[j];
      }),
    ];
  },
});
