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
  /**
   * how the model is packed, for the memory plan: 'float' (default) as with `tpacker -s
   * Remove_QuantDequant` — the Quant / Dequant at the edges kept, float32 in and out, as the
   * conformance scripts pack — or 'int' as tpacker's default command, int8 in and out
   */
  io?: 'float' | 'int';
}

/** Checks an ONNX model (thinker dialect, or a float export read as init would make it). */
export function checkOnnxModel(model: onnx.IModelProto, opts: CheckChipOptions = {}): ChipReport {
  const p = platformOf(opts.platform ?? 'venus');
  const g = chipGraph(model);
  const memory = planMemory(g, p, opts.io ?? 'float');
  const findings = [...checkGraph(g, p), ...memoryFindings(memory)];
  return { platform: p.name, toolchain: p.toolchain, findings: sortFindings(findings), memory };
}

/**
 * tpacker's last asserts: the plan's SHARE_MEM and PSRAM must fit the chip (thinker v1.1.0
 * thinker/resource_packer/_type/_tMemory.py:44-51). When a LinearInt weighs over 32 KB tpacker
 * first plans again with the Linears split, which may fit: then a warning, not an error.
 */
function memoryFindings(m: ChipMemory): Finding[] {
  const kb = (b: number) => `${(b / 1024).toFixed(1)} KB`;
  const out: Finding[] = [];
  const base = { layer: '', op: 'memory', source: 'thinker/resource_packer/_type/_tMemory.py:44' };
  if (m.sramPeakBytes > m.sramBytes)
    out.push({
      ...base,
      rule: 'memory-sram',
      message: `the SRAM tpacker plans (SHARE_MEM: activations, workspace, DMA buffers) is ${kb(m.sramPeakBytes)}, over the chip's ${kb(m.sramBytes)}${m.linearRetry ? '; tpacker retries with its large Linears split, which may fit' : ''}`,
      value: m.sramPeakBytes,
      limit: m.sramBytes,
      severity: m.linearRetry ? 'warning' : 'error',
      suggestion: 'a smaller input, fewer channels in the widest layers, or a stride / pool earlier',
    });
  // with no constant at all tpacker's pack_param returns nothing and packing fails
  // (thinker/resource_packer/venus.py:161-183, graph_serialize.py:29: "cannot unpack non-iterable NoneType")
  if (m.weightBytes === 0)
    out.push({
      ...base,
      rule: 'no-constants',
      message: 'the model has no weights or other constants: tpacker v1.1.0 fails to pack a model without any',
      value: 0,
      limit: '> 0',
      severity: 'error',
      source: 'thinker/resource_packer/venus.py:183',
      suggestion: 'a model for the chip has at least one weighted layer (a conv or a Linear)',
    });
  if (m.weightBytes > m.psramBytes)
    out.push({
      ...base,
      rule: 'memory-psram',
      message: `the weights as tpacker packs them take ${kb(m.weightBytes)}, over the chip's ${kb(m.psramBytes)} PSRAM`,
      value: m.weightBytes,
      limit: m.psramBytes,
      severity: 'error',
      source: 'thinker/resource_packer/_type/_tMemory.py:48',
    });
  return out;
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
