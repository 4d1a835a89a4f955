// display(linger.checkChip(model, x)) in a notebook (docs/chip-rules.md, "In VS Code"): the findings
// as a table (severity, layer, rule, what the layer has, the limit, the way out), and the memory
// plan per layer with bars against the chip's sizes.
import type { ChipReport } from '../chip';
import { formatReport } from '../cli/checkChip';

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const show = (v: unknown) => (Array.isArray(v) ? v.join('×') : String(v ?? ''));
const kb = (b: number) => (b >= 1024 ? `${(b / 1024).toFixed(1)} KB` : `${b} B`);

export function isChipReport(v: unknown): v is ChipReport {
  const r = v as ChipReport | undefined;
  return !!r && typeof r === 'object' && typeof r.platform === 'string' && typeof r.toolchain === 'string' && Array.isArray(r.findings);
}

function bar(bytes: number, of: number, colour: string): string {
  const pct = of > 0 ? Math.min(100, (100 * bytes) / of) : 0;
  return `<div style="display:inline-block;vertical-align:middle;width:8em;height:0.7em;border:1px solid #7a7a7a"><div style="width:${pct.toFixed(1)}%;height:100%;background:${colour}"></div></div>`;
}

export function chipReportHtml(r: ChipReport): string {
  const errors = r.findings.filter((f) => f.severity === 'error').length;
  const warnings = r.findings.length - errors;
  const head = `<p><b>${escapeHtml(r.platform)}</b> (${escapeHtml(r.toolchain)}): ${
    errors ? `<span style="color:#e5484d">${errors} error${errors === 1 ? '' : 's'}</span>` : 'no error'
  }${warnings ? `, ${warnings} warning${warnings === 1 ? '' : 's'}` : ''}</p>`;
  const findings = r.findings.length
    ? `<table><thead><tr><th></th><th style="text-align:left">layer</th><th style="text-align:left">rule</th><th>has</th><th>limit</th><th style="text-align:left">what to do</th></tr></thead><tbody>${r.findings
        .map(
          (f) =>
            `<tr title="${escapeHtml(`${f.message} — ${f.source}`)}"><td style="color:${f.severity === 'error' ? '#e5484d' : '#d9a400'}">${f.severity === 'error' ? '✖' : '⚠'}</td>` +
            `<td style="text-align:left"><code>${escapeHtml(f.layer || '(model)')}</code> ${escapeHtml(f.op)}</td><td style="text-align:left">${escapeHtml(f.rule)}</td>` +
            `<td>${escapeHtml(show(f.value))}</td><td>${escapeHtml(show(f.limit))}</td><td style="text-align:left">${escapeHtml(f.suggestion ?? f.message)}</td></tr>`,
        )
        .join('')}</tbody></table>`
    : '';
  const m = r.memory;
  if (!m) return head + findings;
  const maxAct = Math.max(1, ...m.layers.map((l) => l.activationBytes));
  const maxW = Math.max(1, ...m.layers.map((l) => l.weightBytes));
  const layers = m.layers
    .map(
      (l) =>
        `<tr><td style="text-align:left"><code>${escapeHtml(l.layer || '(model)')}</code></td><td style="text-align:left">${escapeHtml(l.op)}</td>` +
        `<td>${kb(l.activationBytes)} ${bar(l.activationBytes, maxAct, '#4c78a8')}</td><td>${l.weightBytes ? `${kb(l.weightBytes)} ${bar(l.weightBytes, maxW, '#f58518')}` : ''}</td></tr>`,
    )
    .join('');
  const totals =
    `<p>SRAM (SHARE_MEM) ${kb(m.sramPeakBytes)} of ${kb(m.sramBytes)} ${bar(m.sramPeakBytes, m.sramBytes, '#4c78a8')} · ` +
    `PSRAM (weights) ${kb(m.weightBytes)} of ${kb(m.psramBytes)} ${bar(m.weightBytes, m.psramBytes, '#f58518')}</p>`;
  return (
    head +
    findings +
    totals +
    `<table><thead><tr><th style="text-align:left">layer</th><th style="text-align:left">op</th><th>activation</th><th>weights</th></tr></thead><tbody>${layers}</tbody></table>`
  );
}

export function chipReportText(r: ChipReport): string {
  return formatReport(r, 'checkChip');
}
