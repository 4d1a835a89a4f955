// The checks of an ONNX model (an export in memory or a file): the chip's rules (rules.ts) over
// its graph (graph.ts), and the memory plan (memory.ts). The exporter calls this before writing a
// thinker file; checkChip (index.ts) calls it on the export of a module at any stage.
import { OnnxExportError } from '../onnx/export/lowering';
import type { onnx } from '../onnx/proto';
import { chipGraph } from './graph';
import { planMemory, type ChipMemory } from './memory';
import { platformOf } from './platforms';
import { checkGraph, type Finding } from './rules';

export interface ChipReport {
  platform: string;
  /** the toolchain the rules restate */
  toolchain: string;
  /** errors first, then warnings, each in graph order */
  findings: Finding[];
  memory?: ChipMemory;
}

export interface CheckChipOptions {
  /** 'venus' (default: linger 1.x / thinker v1.1.0), 'arcs', 'venusA' (platforms.ts) */
  platform?: string;
}

/** Checks an ONNX model (thinker dialect, or a float export read as init would make it). */
export function checkOnnxModel(model: onnx.IModelProto, opts: CheckChipOptions = {}): ChipReport {
  const p = platformOf(opts.platform ?? 'venus');
  const g = chipGraph(model);
  const findings = checkGraph(g, p);
  return { platform: p.name, toolchain: p.toolchain, findings: sortFindings(findings), memory: planMemory(g, p) };
}

export function sortFindings(f: Finding[]): Finding[] {
  return [...f.filter((x) => x.severity === 'error'), ...f.filter((x) => x.severity !== 'error')];
}

/** The findings as lines for a terminal or an error message: `features.0 (Conv2dInt): … [conv-kernel; ops/Conv2dInt.py:32]`. */
export function formatFindings(findings: Finding[]): string {
  return findings
    .map(
      (f) =>
        `${f.severity}: ${f.layer || '(model)'} (${f.op}): ${f.message} [${f.rule}; ${f.source}]${f.suggestion ? `\n    suggestion: ${f.suggestion}` : ''}`,
    )
    .join('\n');
}

/** The thinker export's refusal: the file would be one tpacker rejects. */
export class ChipRulesError extends OnnxExportError {
  constructor(
    readonly findings: Finding[],
    platform: string,
  ) {
    super(
      `exportOnnx: the chip (${platform}) cannot run this model as exported; tpacker would refuse it (docs/chip-rules.md):\n${formatFindings(findings)}`,
    );
    this.name = 'ChipRulesError';
  }
}
