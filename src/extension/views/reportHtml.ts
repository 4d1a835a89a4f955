// Inspect, Compare and the experiment view as read-only pages (their webview panels: views/reports.ts): HTML made here
// from the engine's results, no script, every value escaped. Plain functions (no vscode), so the
// engine tests can check what a page says.
import type { InspectResult, TensorSummary } from '../../engine/services/inspect';
import type { Histogram, LayerQuantSummary } from '../../engine/services/inspectLayers';
import type { CompareResult } from '../../engine/host/protocol';
import type { ExperimentReport } from '../../engine/services/experiment';

export const esc = (s: unknown): string =>
  String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

function num(v: number | null | undefined): string {
  if (v === null || v === undefined) return '–';
  if (Number.isInteger(v) && Math.abs(v) < 1e9) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(3) : v.toFixed(5).replace(/\.?0+$/, '');
}
const bytes = (n: number) => (n < 1024 ? `${n} B` : n < 1024 ** 2 ? `${(n / 1024).toFixed(1)} KB` : `${(n / 1024 ** 2).toFixed(1)} MB`);

/** 2^n and what it means for a signed `bits`-bit code: Qm.n, or the fractional bits. */
export function scaleLabel(s: number | undefined, bits: number): string {
  if (s === undefined) return '–';
  const n = Math.round(Math.log2(s));
  const m = bits - 1 - n;
  return `2^${n} · ${m >= 0 && n >= 0 ? `Q${m}.${n}` : `${n} fractional bits`}`;
}

/** A tensor's histogram as a small inline SVG (bars in the theme's foreground), with its range as a title. */
export function histogramSvg(h: Histogram | undefined): string {
  if (!h) return '';
  const W = 120,
    H = 22,
    peak = Math.max(...h.counts, 1),
    bw = W / h.counts.length;
  const bars = h.counts
    .map((c, i) => {
      const bh = c === 0 ? 0 : Math.max(1, (c / peak) * H);
      return `<rect x="${(i * bw).toFixed(2)}" y="${(H - bh).toFixed(2)}" width="${Math.max(0.5, bw - 0.6).toFixed(2)}" height="${bh.toFixed(2)}"/>`;
    })
    .join('');
  const zero =
    h.lo < 0 && h.hi > 0
      ? `<line class="zero" x1="${((-h.lo / (h.hi - h.lo)) * W).toFixed(2)}" x2="${((-h.lo / (h.hi - h.lo)) * W).toFixed(2)}" y1="0" y2="${H}"/>`
      : '';
  return `<svg class="hist" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="histogram from ${esc(num(h.lo))} to ${esc(num(h.hi))}"><title>${esc(num(h.lo))} … ${esc(num(h.hi))}, ${h.counts.length} bins</title>${bars}${zero}</svg>`;
}

const table = (head: string[], rows: string[][], cls = '') =>
  `<table class="${cls}"><thead><tr>${head.map((h) => `<th scope="col">${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>`;

/** What a linger buffer is, for the tensor table (docs/fixed-point.md). */
function bufferNote(t: TensorSummary, layers: Map<string, LayerQuantSummary>): string {
  const dot = t.name.lastIndexOf('.');
  const leaf = t.name.slice(dot + 1),
    layer = layers.get(t.name.slice(0, dot));
  if (!layer) return '';
  if (/^scale_[xwo]$/.test(leaf) && t.max === 0) return 'filled only while exporting (linger)';
  const which = leaf.match(/^running_([xwo])$/)?.[1] as 'x' | 'w' | 'o' | undefined;
  if (which) {
    const bits = which === 'x' ? layer.bits.data : which === 'w' ? layer.bits.parameter : layer.bits.out;
    return `EMA of 127/s → eval scale ${esc(scaleLabel(layer.scales[which], bits))}`;
  }
  if (leaf === 'weight' && layer.weightCodes)
    return `codes [${layer.weightCodes.min}, ${layer.weightCodes.max}] at ${esc(scaleLabel(layer.scales.w, layer.bits.parameter))}`;
  return '';
}

/** Inspect's page: the metadata, the fixed-point layers, and a row per tensor with its histogram. */
export function inspectHtml(r: InspectResult): string {
  const m = r.metadata;
  const kv: [string, string][] = [];
  const add = (k: string, v: string | undefined) => v && kv.push([k, v]);
  add('file', `${esc(r.file)} (${bytes(r.fileSize)})`);
  add('format', esc(m.format || 'plain safetensors: no linger metadata'));
  add('stage', `<b>${esc(m.stage)}</b>${m.stageInferred ? ' (inferred from the tensor names)' : ''}`);
  add('model', m.model && esc(m.model));
  add('created', m.created && esc(m.created));
  add('parent', m.parent && `${esc(m.parent)}${r.parentProblem ? ` <span class="warn">warning: ${esc(r.parentProblem)}</span>` : ''}`);
  add(
    'metrics',
    Object.keys(m.metrics).length
      ? Object.entries(m.metrics)
          .map(([k, v]) => `${esc(k)} ${esc(num(v))}`)
          .join(', ')
      : undefined,
  );
  add('input shape', m.inputShape && `[${m.inputShape.join(', ')}]${m.inputDtype ? ` (${esc(m.inputDtype)})` : ''}`);
  add('transforms', m.transforms && esc(m.transforms.length ? m.transforms.join(' → ') : 'none'));
  add('optimizer', r.optimizer && `${esc(r.optimizer.type)}, ${r.optimizer.tensors.length} state tensors`);
  add('state', `${r.values.toLocaleString('en-US')} values in ${r.tensors.length} tensors`);
  const layers = new Map(r.layers.map((l) => [l.path, l]));
  const parts = [
    `<h1>${esc(r.file.split(/[\\/]/).pop())}</h1>`,
    `<table class="meta">${kv.map(([k, v]) => `<tr><th scope="row">${esc(k)}</th><td>${v}</td></tr>`).join('')}</table>`,
  ];
  if (r.layers.length) {
    parts.push(
      '<h2>Fixed-point layers</h2>',
      '<p class="note">Eval scales from the stored running values (linger\'s rule). A layer fed by another Int layer uses that layer\'s output scale instead of its own scale_x.</p>',
      table(
        ['layer', 'type', 'bits x/w/o', 'scale x', 'scale w', 'scale o', 'weight codes'],
        r.layers.map((l) => [
          esc(l.path),
          esc(l.type),
          `${l.bits.data}/${l.bits.parameter}/${l.bits.out}`,
          esc(scaleLabel(l.scales.x, l.bits.data)),
          esc(scaleLabel(l.scales.w, l.bits.parameter)),
          esc(scaleLabel(l.scales.o, l.bits.out)),
          l.weightCodes ? `[${l.weightCodes.min}, ${l.weightCodes.max}]` : '–',
        ]),
      ),
    );
  }
  const row = (t: TensorSummary) => [
    `<code>${esc(t.name)}</code>`,
    esc(t.dtype),
    `[${t.shape.join(', ')}]`,
    esc(num(t.min)),
    esc(num(t.max)),
    esc(num(t.mean)) + (t.nonFinite ? ` <span class="warn">${t.nonFinite} NaN/∞</span>` : ''),
    histogramSvg(t.histogram),
    bufferNote(t, layers),
  ];
  parts.push('<h2>Tensors</h2>', table(['name', 'dtype', 'shape', 'min', 'max', 'mean', 'histogram', ''], r.tensors.map(row), 'tensors'));
  if (r.optimizer?.tensors.length)
    parts.push(
      '<h2>Optimizer state</h2>',
      table(['name', 'dtype', 'shape', 'min', 'max', 'mean', 'histogram', ''], r.optimizer.tensors.map(row), 'tensors'),
    );
  return parts.join('\n');
}

/** Compare's page: metrics, the BatchNorms folded at either stage, moved, added, removed and changed keys. */
export function compareHtml(r: CompareResult): string {
  const A = esc(r.a.split(/[\\/]/).pop()),
    B = esc(r.b.split(/[\\/]/).pop());
  const delta = (d: number) => (d === 0 ? 'equal' : d.toExponential(3));
  const foldNote = (key: string) => {
    const f = r.folded.find((x) => key === `${x.conv}.weight` || key === `${x.conv}.bias`);
    return f
      ? `<span class="note-inline">${esc(f.bn)} folded into ${esc(f.conv)} in ${f.in === 'a' ? A : B}: moved by the fold</span>`
      : '';
  };
  const bnOf = (key: string) => r.folded.find((x) => key.startsWith(`${x.bn}.`));
  const parts = [
    `<h1>${A} → ${B}</h1>`,
    `<table class="meta"><tr><th scope="row">A</th><td>${esc(r.a)} (<b>${esc(r.stages[0])}</b>)</td></tr><tr><th scope="row">B</th><td>${esc(r.b)} (<b>${esc(r.stages[1])}</b>)</td></tr></table>`,
  ];
  if (r.metrics.length)
    parts.push(
      '<h2>Metrics</h2>',
      table(
        ['metric', 'A', 'B', 'Δ'],
        r.metrics.map((m) => [
          esc(m.name),
          esc(num(m.a)),
          esc(num(m.b)),
          m.a !== undefined && m.b !== undefined ? esc(`${m.b - m.a >= 0 ? '+' : ''}${(m.b - m.a).toFixed(5)}`) : '–',
        ]),
      ),
    );
  if (r.folded.length)
    parts.push(
      `<p class="note">BatchNorm folded: ${r.folded.map((f) => `${esc(f.bn)} → ${esc(f.conv)} (in ${f.in === 'a' ? A : B})`).join(', ')}. A folded conv's weight and bias hold the BN's scale and shift, so they differ from the unfolded ones by design; the BN's own keys are gone.</p>`,
    );
  parts.push(
    `<h2>Moved to another name (${r.moved.length})</h2>`,
    r.moved.length
      ? table(
          ['in A', 'in B', 'max |Δ|', ''],
          r.moved.map((m) => [
            `<code>${esc(m.from)}</code>`,
            `<code>${esc(m.to)}</code>`,
            delta(m.maxAbs),
            foldNote(m.to) || foldNote(m.from),
          ]),
        )
      : '<p>none</p>',
  );
  const list = (title: string, keys: string[]) =>
    `<details${keys.length <= 12 ? ' open' : ''}><summary>${title} (${keys.length})</summary>${
      keys.length
        ? `<ul>${keys
            .map((k) => {
              const f = bnOf(k);
              return `<li><code>${esc(k)}</code>${f ? ` <span class="note-inline">folded into ${esc(f.conv)}</span>` : ''}</li>`;
            })
            .join('')}</ul>`
        : '<p>none</p>'
    }</details>`;
  parts.push(list(`Only in ${B}`, r.added), list(`Only in ${A}`, r.removed));
  if (r.reshaped.length)
    parts.push(
      '<h2>In both, different shapes</h2>',
      table(
        ['key', 'A', 'B'],
        r.reshaped.map((x) => [`<code>${esc(x.key)}</code>`, `[${x.a.join(', ')}]`, `[${x.b.join(', ')}]`]),
      ),
    );
  parts.push(
    `<h2>In both (${r.changed.length}), by max |Δ|</h2>`,
    table(
      ['key', 'max |Δ|', ''],
      [...r.changed].sort((x, y) => y.maxAbs - x.maxAbs).map((c) => [`<code>${esc(c.key)}</code>`, delta(c.maxAbs), foldNote(c.key)]),
    ),
  );
  return parts.join('\n');
}

/** Text from a chart SVG vega wrote: only the SVG element itself is kept (no prolog, no script can be in it). */
function inlineSvg(svg: string): string {
  const start = svg.indexOf('<svg');
  if (start < 0 || /<script|\son\w+\s*=|javascript:/i.test(svg)) return '';
  return svg.slice(start);
}

/** The experiment page: a chart per metric across the stages (a line per run), notes, lineage and recipes. */
export function experimentHtml(r: ExperimentReport, svgs: { metric: string; svg: string }[]): string {
  const ck = new Map(r.checkpoints.map((c) => [c.file, c]));
  const several = r.folders.length > 1;
  const metric = (k: string, v: number) => (k === 'accuracy' && v >= 0 && v <= 1 ? `${(v * 100).toFixed(2)}%` : num(v));
  const metricsText = (m: Record<string, number>) =>
    Object.entries(m)
      .map(([k, v]) => `${esc(k)} ${esc(metric(k, v))}`)
      .join(', ');
  const base = (f: string) => f.split(/[\\/]/).pop() ?? f;
  const parts = [
    `<h1>${several ? `${r.folders.length} experiments overlaid` : `Experiment ${esc(r.title)}`}</h1>`,
    `<p class="sub">${several ? `${r.folders.map((f) => esc(base(f))).join(', ')}: ` : ''}${r.checkpoints.length} checkpoint${r.checkpoints.length === 1 ? '' : 's'} in ${r.runs.length} run${r.runs.length === 1 ? '' : 's'} (checkpoints linked by their parents: float → traced → fixed)</p>`,
  ];
  const charts = svgs.map((s) => inlineSvg(s.svg)).filter(Boolean);
  if (charts.length) parts.push(`<div class="charts">${charts.map((c) => `<figure class="chart">${c}</figure>`).join('')}</div>`);
  else if (!r.checkpoints.length) parts.push('<p>No readable checkpoint in this experiment.</p>');
  else parts.push('<p>No checkpoint records metrics.</p>');
  if (r.notes.length || r.unreadable.length) {
    parts.push('<h2>Notes</h2>');
    for (const n of r.notes) parts.push(`<p class="note${n.kind === 'warning' ? ' warning' : ''}">${esc(n.text)}</p>`);
    for (const u of r.unreadable) parts.push(`<p class="note warning">${esc(base(u.file))} cannot be read: ${esc(u.error)}</p>`);
  }

  // lineage: every root with its descendants, a branch per child; a heading per folder when overlaid
  const children = new Map<string, string[]>();
  for (const c of r.checkpoints) if (c.parent) children.set(c.parent, [...(children.get(c.parent) ?? []), c.file]);
  const seen = new Set<string>();
  const item = (file: string): string => {
    const c = ck.get(file)!;
    if (seen.has(file)) return '';
    seen.add(file);
    const kids = children.get(file) ?? [];
    const warn = c.parentProblem
      ? ` <span class="warn">warning: ${esc(c.parentProblem)}</span>`
      : c.missingParent
        ? ` <span class="note-inline">parent ${esc(c.missingParent)} not shown</span>`
        : '';
    const m = metricsText(c.metrics);
    return `<li><span class="stage stage-${esc(c.stage)}">${esc(c.stage)}</span> <code>${esc(c.name)}</code>${m ? ` — ${m}` : ''}${
      c.folded.length
        ? ` <span class="note-inline">${c.folded.map((f) => `${esc(f.bn)} folded into ${esc(f.conv)}`).join(', ')}</span>`
        : ''
    }${warn}${kids.length ? `<ul>${kids.map(item).join('')}</ul>` : ''}</li>`;
  };
  parts.push('<h2>Lineage</h2>');
  for (const dir of r.folders) {
    const roots = r.checkpoints.filter((c) => c.dir === dir && (!c.parent || ck.get(c.parent)?.dir !== dir));
    parts.push(`${several ? `<h3>${esc(base(dir))}</h3>` : ''}<ul class="lineage">${roots.map((c) => item(c.file)).join('')}</ul>`);
  }

  // recipes: a row per setting, a column per checkpoint
  const withRecipe = r.checkpoints.filter((c) => c.recipe && Object.keys(c.recipe).length);
  const keys = [...new Set(withRecipe.flatMap((c) => Object.keys(c.recipe!)))];
  if (keys.length)
    parts.push(
      '<h2>Recipes</h2>',
      `<div class="scroll">${table(
        ['', ...withRecipe.map((c) => `${c.label} (${c.stage})`)],
        keys.map((k) => [
          esc(k),
          ...withRecipe.map((c) => (k in c.recipe! ? esc(c.recipe![k] === null ? 'none' : String(c.recipe![k])) : '–')),
        ]),
        'recipes',
      )}</div>`,
    );
  return parts.join('\n');
}
