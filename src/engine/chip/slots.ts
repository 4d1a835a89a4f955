// tpacker's SHARE_MEM plan (docs/chip-rules.md, "Memory"): every activation, the workspace and
// the DMA buffers get a lifetime over the node order, then three planners place them into slots
// and the plan with the smallest SHARE_MEM total wins (thinker v1.1.0
// thinker/resource_packer/memory.py:398-426). This restates the three placements' behaviour,
// ties and quirks included, so that the total equals tpacker's.

export interface SlotTensor {
  name: string;
  bytes: number;
  begin: number;
  end: number;
  /** the tensor whose memory it reuses (a Reshape / Squeeze / Unsqueeze output: its input), else itself */
  share: number;
}

export interface SlotPlan {
  method: 'size' | 'breadth' | 'order';
  slots: number[];
  total: number;
}

/**
 * Lifetimes (memory.py:145-213): an in-place output shares its input's memory and the chain of
 * sharing tensors takes the union of their lifetimes, walked in entry order as tpacker does.
 */
export function shareLifetimes(ts: SlotTensor[]): void {
  for (const t of ts) {
    const chain = [t];
    let p = t;
    while (p.share !== ts.indexOf(p)) {
      p = ts[p.share];
      chain.push(p);
    }
    const b = Math.min(...chain.map((c) => c.begin));
    const e = Math.max(...chain.map((c) => c.end));
    for (const c of chain) {
      c.begin = b;
      c.end = e;
    }
    t.share = p.share;
  }
}

/** best fit: the smallest slot at least as large whose every interval is disjoint (memory.py:245-271) */
function place(order: SlotTensor[]): number[] {
  const sizes: number[] = [];
  const lives: [number, number][][] = [];
  for (const t of order) {
    let best = -1;
    let slack = Infinity;
    sizes.forEach((s, k) => {
      if (t.bytes <= s && s - t.bytes < slack && lives[k].every(([b, e]) => t.begin > e || t.end < b)) {
        slack = s - t.bytes;
        best = k;
      }
    });
    if (best < 0) {
      sizes.push(t.bytes);
      lives.push([[t.begin, t.end]]);
    } else lives[best].push([t.begin, t.end]);
  }
  return sizes;
}

/** the tensors alive at each node: only those not sharing another's memory (memory.py:206-213) */
function aliveAt(ts: SlotTensor[], nodes: number): SlotTensor[][] {
  const alive: SlotTensor[][] = Array.from({ length: nodes }, () => []);
  ts.forEach((t, i) => {
    if (t.share !== i) return;
    for (let j = t.begin; j <= t.end && j < nodes; j++) alive[j].push(t);
  });
  return alive;
}

/** the largest first, stable (memory.py:225-274): every tensor, in-place ones too */
function bySize(ts: SlotTensor[]): number[] {
  return place([...ts].sort((a, b) => b.bytes - a.bytes));
}

/** nodes by their live bytes, largest first; at each, its not yet placed tensors largest first (memory.py:277-344) */
function byBreadth(ts: SlotTensor[], nodes: number): number[] {
  const alive = aliveAt(ts, nodes);
  const total = alive.map((l) => l.reduce((s, t) => s + t.bytes, 0));
  const order = alive.map((_, i) => i).sort((a, b) => total[b] - total[a]);
  const seen = new Set<SlotTensor>();
  const list: SlotTensor[] = [];
  for (const i of order) {
    if (!total[i]) continue;
    for (const t of [...alive[i]].sort((a, b) => b.bytes - a.bytes))
      if (!seen.has(t)) {
        seen.add(t);
        list.push(t);
      }
  }
  return place(list);
}

/** node by node: a tensor that dies frees its slot, a new one takes the smallest free slot large enough (memory.py:347-395) */
function byOrder(ts: SlotTensor[], nodes: number): number[] {
  const alive = aliveAt(ts, nodes);
  const sizes: number[] = [];
  const slot = new Map<SlotTensor, number>();
  let idle: [number, number][] = [];
  let prev: SlotTensor[] = [];
  for (const cur of alive) {
    for (const t of prev) if (!cur.includes(t)) idle.push([sizes[slot.get(t)!], slot.get(t)!]);
    idle.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    for (const t of cur) {
      if (prev.includes(t)) continue;
      const k = idle.findIndex(([s]) => s >= t.bytes);
      if (k >= 0) {
        slot.set(t, idle[k][1]);
        idle = idle.filter((_, j) => j !== k);
      } else {
        slot.set(t, sizes.length);
        sizes.push(t.bytes);
      }
    }
    prev = cur;
  }
  return sizes;
}

/** the three plans and the one tpacker keeps: the first of the smallest total (memory.py:409-412) */
export function planSlots(ts: SlotTensor[], nodes: number): { best: SlotPlan; plans: SlotPlan[] } {
  const sum = (s: number[]) => s.reduce((a, b) => a + b, 0);
  const plans: SlotPlan[] = [
    { method: 'size', slots: bySize(ts) },
    { method: 'breadth', slots: byBreadth(ts, nodes) },
    { method: 'order', slots: byOrder(ts, nodes) },
  ].map((p) => ({ ...(p as Omit<SlotPlan, 'total'>), total: sum(p.slots) }));
  const best = plans.reduce((a, b) => (b.total < a.total ? b : a));
  return { best, plans };
}
