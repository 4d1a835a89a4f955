// The graph editor's webview: lays the traced graph out with dagre, draws it as SVG in the editor's
// theme colours, and offers zoom (wheel, +/−), pan (drag), fit, Save as SVG; a click (or Enter) on a
// node shows its properties in the side panel, and on a module selects it in the Model view. It
// refits when the editor is resized until the user zooms or pans. Talks to the extension only
// through postMessage.
import dagre from '@dagrejs/dagre';
import { nodeDetails } from './details';
import { DrawGraph, GraphPayload, toDrawGraph } from './model';

declare function acquireVsCodeApi(): { postMessage(m: unknown): void; setState(s: unknown): void; getState(): unknown };
const vscode = acquireVsCodeApi();
const SVG = 'http://www.w3.org/2000/svg';

const root = document.getElementById('graph') as unknown as SVGSVGElement;
const viewport = document.getElementById('viewport') as unknown as SVGGElement;
const empty = document.getElementById('empty')!;
const title = document.getElementById('title')!;
const props = document.getElementById('props')!;
let view = { x: 0, y: 0, k: 1 };
let size = { w: 1, h: 1 };

function el<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number>,
  parent: Element,
): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  parent.appendChild(e);
  return e;
}

function apply(moved = false): void {
  if (moved) userMoved = true;
  viewport.setAttribute('transform', `translate(${view.x},${view.y}) scale(${view.k})`);
}

/** The whole graph in view (the Fit button). */
function fit(): void {
  const r = root.getBoundingClientRect();
  const k = Math.min(2, Math.max(0.05, Math.min((r.width - 24) / size.w, (r.height - 24) / size.h)));
  view = { k, x: (r.width - size.w * k) / 2, y: Math.max(12, (r.height - size.h * k) / 2) };
  apply();
}

/** A new graph: fitted when it stays readable, else readable from its input on (pan or Fit for the rest). */
function initialView(): void {
  fit();
  if (view.k >= READABLE) return;
  const r = root.getBoundingClientRect();
  view = {
    k: READABLE,
    x: rankdir === 'LR' ? 12 : (r.width - size.w * READABLE) / 2,
    y: rankdir === 'LR' ? (r.height - size.h * READABLE) / 2 : 12,
  };
  apply();
}
const READABLE = 0.75;

function draw(g: DrawGraph): { nodes: number; edges: number; fused: number; ahead: number } {
  viewport.replaceChildren();
  const layout = new dagre.graphlib.Graph({ compound: true, multigraph: true });
  // top to bottom in a tall view (the side bar), left to right in a wide one (a panel)
  const r = root.getBoundingClientRect();
  rankdir = r.width > r.height * 1.6 ? 'LR' : 'TB';
  layout.setGraph({ rankdir, nodesep: 24, ranksep: 36, marginx: 16, marginy: 16 });
  layout.setDefaultEdgeLabel(() => ({}));
  const charW = 7;
  for (const n of g.nodes) {
    const w = Math.max(90, Math.max(n.label.length, n.sub.length) * charW + 24);
    layout.setNode(n.id, { width: w, height: n.sub ? 42 : 28 });
  }
  for (const c of g.clusters) {
    layout.setNode(c.id, { label: c.label, paddingTop: 22, paddingLeft: 8, paddingRight: 8, paddingBottom: 8 });
    for (const m of c.members) layout.setParent(m, c.id);
  }
  g.edges.forEach((e, i) => layout.setEdge(e.from, e.to, {}, `e${i}`));
  dagre.layout(layout);

  const clusterLayer = el('g', { class: 'clusters' }, viewport);
  for (const c of g.clusters) {
    const b = layout.node(c.id);
    el('rect', { class: 'cluster', x: b.x - b.width / 2, y: b.y - b.height / 2, width: b.width, height: b.height, rx: 6 }, clusterLayer);
    const t = el('text', { class: 'cluster-label', x: b.x - b.width / 2 + 8, y: b.y - b.height / 2 + 15 }, clusterLayer);
    t.textContent = c.label;
  }
  const edgeLayer = el('g', { class: 'edges' }, viewport);
  g.edges.forEach((e, i) => {
    const pts = layout.edge({ v: e.from, w: e.to, name: `e${i}` }).points;
    const d = pts.map((p: { x: number; y: number }, j: number) => `${j ? 'L' : 'M'}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(' ');
    const path = el(
      'path',
      { class: e.ahead ? 'edge ahead' : 'edge', d, 'marker-end': e.ahead ? 'url(#arrow-ahead)' : 'url(#arrow)' },
      edgeLayer,
    );
    if (e.shape) el('title', {}, path).textContent = e.shape;
  });
  const nodeLayer = el('g', { class: 'nodes' }, viewport);
  for (const n of g.nodes) {
    const b = layout.node(n.id);
    const grp = el(
      'g',
      {
        class: `node ${n.kind}${n.fused ? ' fused' : ''}${n.ahead ? ' ahead' : ''}${n.chip ? ` chip-${n.chip}` : ''}`,
        transform: `translate(${b.x - b.width / 2},${b.y - b.height / 2})`,
        tabindex: n.kind === 'module' || n.kind === 'op' ? 0 : -1,
        'data-id': n.id,
      },
      nodeLayer,
    );
    if (n.path) grp.setAttribute('data-path', n.path);
    el('rect', { width: b.width, height: b.height, rx: n.kind === 'op' ? 14 : 4 }, grp);
    // colour by memory: a tint as strong as the layer's share of the largest layer's bytes
    if (n.memory !== undefined)
      el('rect', { class: 'mem', width: b.width, height: b.height, rx: 4, 'fill-opacity': (0.08 + 0.5 * n.memory).toFixed(3) }, grp);
    const t1 = el('text', { class: 'label', x: b.width / 2, y: n.sub ? 17 : 18 }, grp);
    t1.textContent = n.label;
    if (n.sub) {
      const t2 = el('text', { class: 'sub', x: b.width / 2, y: 33 }, grp);
      t2.textContent = n.sub;
    }
    if (n.ahead) el('title', {}, grp).textContent = `${n.label}: ahead ReLU (its output scale covers the positive range only)`;
    if (n.chip)
      el('title', {}, grp).textContent =
        `${n.label}: ${n.chip === 'error' ? 'the chip cannot run it' : 'a chip warning'} (select it for why)`;
  }
  const gl = layout.graph();
  size = { w: gl.width ?? 1, h: gl.height ?? 1 };
  initialView();
  return { nodes: g.nodes.length, edges: g.edges.length, fused: g.clusters.length, ahead: g.edges.filter((e) => e.ahead).length };
}

/** The node panel: the selected node's properties (details.ts), or a hint. */
function showProps(id: string | null): void {
  const d = id && /^n\d+$/.test(id) && currentPayload ? nodeDetails(currentPayload, Number(id.slice(1))) : undefined;
  props.replaceChildren();
  vscode.postMessage({ type: 'props', details: d && { title: d.title, subtitle: d.subtitle, rows: d.rows, notes: d.notes } });
  if (!d) {
    const hint = document.createElement('p');
    hint.className = 'hint';
    hint.textContent = 'Select a node to see its type, shapes, parameters and, for a fixed-point layer, its bits and scales.';
    props.append(hint);
    return;
  }
  const h = document.createElement('h2');
  h.textContent = d.title;
  const sub = document.createElement('div');
  sub.className = 'subtitle';
  sub.textContent = d.subtitle;
  const table = document.createElement('table');
  for (const [k, v] of d.rows) {
    const tr = table.insertRow();
    const th = document.createElement('th');
    th.scope = 'row';
    th.textContent = k;
    tr.append(th);
    tr.insertCell().textContent = v;
  }
  props.append(h, sub, table);
  for (const n of d.notes) {
    const p = document.createElement('p');
    p.className = 'note';
    p.textContent = n;
    props.append(p);
  }
}

function select(target: EventTarget | null): void {
  const node = (target as Element | null)?.closest?.('[data-id]');
  if (!node) return;
  document.querySelectorAll('.node.selected').forEach((x) => x.classList.remove('selected'));
  node.classList.add('selected');
  showProps(node.getAttribute('data-id'));
  const p = node.getAttribute('data-path');
  if (p !== null) vscode.postMessage({ type: 'select', path: p });
}

root.addEventListener('click', (e) => select(e.target));
root.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' || e.key === ' ') select(e.target);
});
root.addEventListener(
  'wheel',
  (e) => {
    e.preventDefault();
    const r = root.getBoundingClientRect();
    const k = Math.min(4, Math.max(0.05, view.k * Math.exp(-e.deltaY * 0.0015)));
    const mx = e.clientX - r.left,
      my = e.clientY - r.top;
    view = { k, x: mx - ((mx - view.x) * k) / view.k, y: my - ((my - view.y) * k) / view.k };
    apply(true);
  },
  { passive: false },
);
let drag: { x: number; y: number; vx: number; vy: number } | undefined;
root.addEventListener('pointerdown', (e) => {
  drag = { x: e.clientX, y: e.clientY, vx: view.x, vy: view.y };
});
window.addEventListener('pointermove', (e) => {
  if (!drag) return;
  view = { ...view, x: drag.vx + e.clientX - drag.x, y: drag.vy + e.clientY - drag.y };
  apply(true);
});
window.addEventListener('pointerup', () => {
  drag = undefined;
});
const zoomBy = (f: number) => {
  view = { ...view, k: Math.min(4, Math.max(0.05, view.k * f)) };
  apply(true);
};
document.getElementById('fit')!.addEventListener('click', fit);
document.getElementById('zoom-in')!.addEventListener('click', () => zoomBy(1.25));
document.getElementById('zoom-out')!.addEventListener('click', () => zoomBy(0.8));
document.getElementById('save')!.addEventListener('click', () => vscode.postMessage({ type: 'save' }));
const memoryButton = document.getElementById('memory') as HTMLButtonElement;
memoryButton.addEventListener('click', () => {
  const on = !root.classList.contains('by-memory');
  root.classList.toggle('by-memory', on);
  memoryButton.setAttribute('aria-pressed', String(on));
});
const chipSummary = document.getElementById('chip')!;
/** The toolbar's chip line: the platform, errors, and the plan's SRAM and PSRAM against the chip's. */
function showChip(p: GraphPayload): void {
  const c = p.chip;
  memoryButton.hidden = !c;
  chipSummary.textContent = '';
  if (!c) return;
  const kb = (b: number) => `${(b / 1024).toFixed(1)} KB`;
  const errors = Object.values(c.layers).reduce((a, l) => a + l.findings.filter((f) => f.severity === 'error').length, 0);
  chipSummary.textContent = `${c.platform}: ${errors ? `${errors} error${errors === 1 ? '' : 's'}` : 'fits'} · SRAM ${kb(c.sramPeakBytes)} / ${kb(c.sramBytes)} · PSRAM ${kb(c.weightBytes)} / ${kb(c.psramBytes)}`;
  chipSummary.className = errors ? 'error' : '';
  chipSummary.title = chipSummary.textContent;
}
let rankdir = 'TB';
let current: DrawGraph | undefined;
let currentPayload: GraphPayload | undefined;
// until the user zooms or pans, a resize (the editor opening, a sash moved, the panel shown) lays out and frames anew
let userMoved = false;
new ResizeObserver(() => {
  if (userMoved || !current) return;
  const r = root.getBoundingClientRect();
  if (r.width < 2 || r.height < 2) return; // hidden
  if ((r.width > r.height * 1.6 ? 'LR' : 'TB') !== rankdir) draw(current);
  else initialView();
}).observe(root);

/** The drawing as a standalone SVG file: the colours resolved, the current layout at scale 1. */
function standaloneSvg(): string {
  const clone = root.cloneNode(true) as SVGSVGElement;
  clone.querySelector('#viewport')!.setAttribute('transform', 'translate(0,0) scale(1)');
  clone.setAttribute('xmlns', SVG);
  clone.setAttribute('width', String(Math.ceil(size.w)));
  clone.setAttribute('height', String(Math.ceil(size.h)));
  clone.setAttribute('viewBox', `0 0 ${Math.ceil(size.w)} ${Math.ceil(size.h)}`);
  const css = getComputedStyle(document.body);
  const style = document.createElementNS(SVG, 'style');
  const v = (name: string) => css.getPropertyValue(name).trim() || 'currentColor';
  style.textContent = (document.getElementById('graph-style')?.textContent ?? '').replace(
    /var\((--[\w-]+)(?:,[^)]*)?\)/g,
    (_, name: string) => v(name),
  );
  clone.insertBefore(style, clone.firstChild);
  return new XMLSerializer().serializeToString(clone);
}

window.addEventListener('message', (e: MessageEvent) => {
  const m = e.data as { type: string; payload?: GraphPayload };
  if (m.type === 'show' && m.payload) {
    empty.style.display = 'none';
    title.textContent = m.payload.title;
    try {
      currentPayload = m.payload;
      current = toDrawGraph(m.payload);
      userMoved = false;
      const stats = draw(current);
      showChip(m.payload);
      showProps(null);
      vscode.setState(m.payload);
      vscode.postMessage({ type: 'rendered', ...stats });
    } catch (err) {
      current = undefined;
      vscode.postMessage({
        type: 'rendered',
        nodes: 0,
        edges: 0,
        fused: 0,
        ahead: 0,
        error: err instanceof Error ? err.message : String(err),
      });
    }
  } else if (m.type === 'svg') {
    vscode.postMessage({ type: 'svg', svg: standaloneSvg() });
  } else if (m.type === 'activate') {
    // as a click on the module's node would (the extension's keyboard path and its tests)
    select(document.querySelector(`[data-path="${CSS.escape(String((m as { path?: string }).path))}"]`));
  } else if (m.type === 'select') {
    document.querySelectorAll('.node.selected').forEach((x) => x.classList.remove('selected'));
    const node = document.querySelector(`[data-path="${CSS.escape(String((m as { path?: string }).path))}"]`);
    node?.classList.add('selected');
    showProps(node?.getAttribute('data-id') ?? null);
  }
});
const saved = vscode.getState() as GraphPayload | undefined;
if (saved) window.postMessage({ type: 'show', payload: saved }, '*');
vscode.postMessage({ type: 'ready' });
