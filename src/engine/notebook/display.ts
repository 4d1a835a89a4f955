// Values → Jupyter MIME bundles: `text/plain` always (PyTorch-style printing), `text/html` for
// trees and tables, and charts as Vega-Lite specs the kernel's main thread renders to SVG
// (charts.ts). Big values are summarised, never dumped.
import { inspect } from 'node:util';
import { Module } from '../nn/module';
import { Tensor } from '../tensor';
import { moduleTree } from '../state/checkpoint';
import { formatQuantReport, QuantReportRow } from '../linger/init';
import { tf } from '../backend/tf';
import { chipReportHtml, chipReportText, isChipReport } from './chipDisplay';

export type MimeBundle = Record<string, unknown>;

/** The MIME type carrying a Vega-Lite spec from the kernel's thread to the renderer (never saved). */
export const CHART_MIME = 'application/vnd.linger.chart+json';

/** A chart to display: a Vega-Lite spec (data inline). */
export class Chart {
  constructor(readonly spec: Record<string, unknown>) {}
}

/** chart(spec): a Vega-Lite chart; display it, or make it a cell's last expression. */
export function chart(spec: Record<string, unknown>): Chart {
  return new Chart(spec);
}

const TEXT_LIMIT = 20_000;

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function clip(s: string): string {
  return s.length <= TEXT_LIMIT ? s : `${s.slice(0, TEXT_LIMIT)}\n… (${(s.length - TEXT_LIMIT).toLocaleString('en-US')} more characters)`;
}

function isQuantReport(v: unknown): v is QuantReportRow[] {
  return (
    Array.isArray(v) &&
    v.length > 0 &&
    v.every((r) => r && typeof r === 'object' && 'path' in r && 'type' in r && 'scaleO' in r && 'bits' in r)
  );
}

/** { name: number[] } with at least one non-empty series: metric series, drawn as lines. */
function isSeries(v: unknown): v is Record<string, number[]> {
  if (!v || typeof v !== 'object' || Array.isArray(v) || Object.getPrototypeOf(v) !== Object.prototype) return false;
  const vals = Object.values(v);
  return (
    vals.length > 0 &&
    vals.every((a) => Array.isArray(a) && a.every((x) => typeof x === 'number')) &&
    vals.some((a) => (a as number[]).length > 1)
  );
}

const MAX_POINTS = 400;

/** A line chart of metric series against their index (step, epoch); long series are averaged down. */
export function seriesChart(series: Record<string, number[]>, opts: { x?: string; title?: string } = {}): Chart {
  const x = opts.x ?? 'step';
  // a long run is drawn as at most MAX_POINTS means of consecutive values (the SVG stays small)
  const points = (ys: number[]): [number, number][] => {
    if (ys.length <= MAX_POINTS) return ys.map((y, i) => [i + 1, y]);
    const per = ys.length / MAX_POINTS;
    return Array.from({ length: MAX_POINTS }, (_, k) => {
      const a = Math.floor(k * per),
        b = Math.floor((k + 1) * per);
      let sum = 0;
      for (let i = a; i < b; i++) sum += ys[i];
      return [(a + b + 1) / 2, sum / (b - a)];
    });
  };
  const values = Object.entries(series).flatMap(([name, ys]) => points(ys).map(([i, y]) => ({ [x]: i, value: y, series: name })));
  return new Chart({
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    ...(opts.title ? { title: opts.title } : {}),
    width: 480,
    height: 220,
    data: { values },
    mark: { type: 'line', point: values.length <= 40 },
    encoding: {
      x: { field: x, type: 'quantitative' },
      y: {
        field: 'value',
        type: 'quantitative',
        title: Object.keys(series).length === 1 ? Object.keys(series)[0] : 'value',
        scale: { zero: false },
      },
      color: { field: 'series', type: 'nominal', title: null, ...(Object.keys(series).length === 1 ? { legend: null } : {}) },
    },
  });
}

/** A tensor: shape and dtype, its values when few, otherwise statistics and the first values. */
export function tensorSummary(t: Tensor): string {
  const head = `tensor(shape=[${t.shape.join(', ')}], dtype=${t.dtype}`;
  if (t.size === 0) return `${head}, [])`;
  const logical = t.logical();
  const flat = tf.tidy(() => tf.reshape(logical, [-1]));
  try {
    if (t.size <= 64) return `${head})\n${formatValues(logical.arraySync(), t.dtype !== 'float32')}`;
    const [min, max, mean] = tf.tidy(() => [tf.min(flat), tf.max(flat), tf.mean(tf.cast(flat, 'float32'))].map((s) => s.dataSync()[0]));
    const first = Array.from(tf.tidy(() => tf.slice(flat, 0, 8)).dataSync() as Float32Array, (v) => +v.toPrecision(6));
    return `${head}, min=${+min.toPrecision(6)}, max=${+max.toPrecision(6)}, mean=${+mean.toPrecision(6)})\nfirst values: [${first.join(', ')}, …] (${t.size.toLocaleString('en-US')} in all)`;
  } finally {
    flat.dispose();
    if (logical !== t.raw) logical.dispose();
  }
}

/** Nested values as PyTorch prints them: 4 decimals, aligned, brackets per dimension. */
function formatValues(v: unknown, integer: boolean): string {
  const flat: number[] = [];
  const walk = (x: unknown): void => {
    if (Array.isArray(x)) x.forEach(walk);
    else flat.push(x as number);
  };
  walk(v);
  const fmt = (x: number) => (integer ? String(x) : x.toFixed(4));
  const width = Math.max(...flat.map((x) => fmt(x).length));
  let ndim = 0;
  for (let x = v; Array.isArray(x); x = x[0]) ndim++;
  const rec = (x: unknown, depth: number): string => {
    if (!Array.isArray(x)) return fmt(x as number).padStart(width);
    if (!Array.isArray(x[0])) return `[${x.map((y) => rec(y, depth + 1)).join(', ')}]`;
    return `[${x.map((y) => rec(y, depth + 1)).join(`,${'\n'.repeat(Math.max(1, ndim - depth - 1))}${' '.repeat(depth + 1)}`)}]`;
  };
  return rec(v, 0);
}

/** A module's tree as an HTML table: path, type and settings, linger's flags, parameters. */
export function moduleHtml(m: Module): string {
  const rows = moduleTree(m).map((e) => {
    const depth = e.path ? e.path.split('.').length : 0;
    const name = e.path ? e.path.slice(e.path.lastIndexOf('.') + 1) : '(model)';
    const flags = [
      ...(e.aheadRelu ? ['ahead ReLU'] : []),
      ...(e.normalize
        ? [
            `normalize ${[
              ['data', e.normalize.data],
              ['weight', e.normalize.weight],
              ['bias', e.normalize.bias],
            ]
              .filter(([, v]) => v !== null)
              .map(([k, v]) => `${k} ±${v}`)
              .join(', ')}`,
          ]
        : []),
      ...(e.bits ? [`int${e.bits.data}/${e.bits.parameter}/${e.bits.out}`] : []),
    ];
    return (
      `<tr><td style="text-align:left;padding-left:${0.5 + depth * 1.2}em;white-space:nowrap"><code>${escapeHtml(name)}</code></td><td style="text-align:left"><code>${escapeHtml(e.type)}${e.repr && e.repr.length <= 90 && !e.repr.includes('\n') ? `(${escapeHtml(e.repr)})` : ''}</code></td>` +
      `<td style="text-align:left">${escapeHtml(flags.join(' · '))}</td><td style="text-align:right">${e.parameters ? e.parameters.toLocaleString('en-US') : ''}</td></tr>`
    );
  });
  const total = m.parameters().reduce((a, p) => a + p.size, 0);
  return (
    `<table><thead><tr><th style="text-align:left">module</th><th style="text-align:left">type</th><th style="text-align:left">linger</th><th>parameters</th></tr></thead>` +
    `<tbody>${rows.join('')}</tbody><tfoot><tr><td colspan="3" style="text-align:left">${escapeHtml(m.typeName())} · ${m.stage()} stage</td><td style="text-align:right">${total.toLocaleString('en-US')}</td></tr></tfoot></table>`
  );
}

function quantReportHtml(rows: QuantReportRow[]): string {
  const cols = Object.keys(rows[0]) as (keyof QuantReportRow)[];
  const cell = (v: unknown): string =>
    typeof v === 'number'
      ? Number.isInteger(v)
        ? String(v)
        : v.toPrecision(4)
      : Array.isArray(v)
        ? `[${v.map(cell).join(', ')}]`
        : v && typeof v === 'object'
          ? Object.values(v).map(cell).join('/')
          : escapeHtml(String(v ?? ''));
  return (
    `<table><thead><tr>${cols.map((c) => `<th>${escapeHtml(String(c))}</th>`).join('')}</tr></thead><tbody>` +
    rows.map((r) => `<tr>${cols.map((c) => `<td>${cell(r[c])}</td>`).join('')}</tr>`).join('') +
    '</tbody></table>'
  );
}

/** The MIME bundle for a value (display(value) and a cell's result). */
export function mimeBundle(v: unknown): MimeBundle {
  if (v instanceof Chart) return { [CHART_MIME]: v.spec, 'text/plain': `<chart${v.spec.title ? `: ${String(v.spec.title)}` : ''}>` };
  if (v instanceof Module) return { 'text/plain': clip(String(v)), 'text/html': moduleHtml(v) };
  if (v instanceof Tensor) return { 'text/plain': tensorSummary(v) };
  if (isChipReport(v)) return { 'text/plain': clip(chipReportText(v)), 'text/html': chipReportHtml(v) };
  if (isQuantReport(v)) return { 'text/plain': clip(formatQuantReport(v)), 'text/html': quantReportHtml(v) };
  if (isSeries(v)) return { ...mimeBundle(seriesChart(v)), 'text/plain': clip(inspect(v, { maxArrayLength: 20, breakLength: 100 })) };
  if (typeof v === 'string') return { 'text/plain': clip(v) };
  return { 'text/plain': clip(inspect(v, { depth: 3, maxArrayLength: 50, maxStringLength: 2000, breakLength: 100 })) };
}
