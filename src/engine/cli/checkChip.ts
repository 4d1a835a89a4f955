// `linger check-chip <model file | checkpoint | onnx> [--platform venus] [--json]`: the chip's rules
// before training (docs/chip-rules.md). A model file is checked as its float model will be after
// traceLayers + init; a checkpoint at its stage (with its model file, or none for a built-in
// model); an ONNX file as it is. Preparing the model is services/exportModel.ts's, as for export.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { initBackend } from '../backend/select';
import { checkChip, formatFindings, PLATFORMS, type ChipReport } from '../chip/index';
import { ModelFileError } from '../modelFile';
import { onnx } from '../onnx/proto';
import { CheckpointFormatError } from '../state/safetensors';
import { ExportError, prepareModel } from '../services/exportModel';

export const CHECK_CHIP_USAGE = `usage: linger check-chip <model file | checkpoint | model.onnx> [--checkpoint <ckpt>] [--platform venus] [--io float|int] [--json]

Checks a model against the chip toolchain's rules (venus: thinker v1.1.0's tpacker) before
training: per layer, what tpacker would refuse (error) or run other than expected (warning), with
the rule, the value, the limit and a suggestion; and the memory its plan needs. A model file
(createModel + inputShape) is checked as it will be after traceLayers + init; a .safetensors
checkpoint at its stage (a built-in model's needs no model file; otherwise give the model file and
--checkpoint); a .onnx file (a thinker export) as it is.
  --platform  ${Object.keys(PLATFORMS).join(', ')} (default venus)
  --io        the memory plan as packed by \`tpacker -s Remove_QuantDequant\` (float, default: float32
              in and out) or by tpacker's default command (int: int8 in and out)
  --json      stdout: the report as one JSON object
Exits 1 when a finding is an error (or the input is unusable), 2 on a usage error.
`;

function kb(n: number): string {
  return n >= 1024 ? `${(n / 1024).toFixed(1)} KB` : `${n} B`;
}

export function formatReport(r: ChipReport, what: string): string {
  const lines = [`${what}: ${r.platform} (${r.toolchain})`];
  const errors = r.findings.filter((f) => f.severity === 'error').length;
  lines.push(r.findings.length ? formatFindings(r.findings) : 'no findings: tpacker packs every layer');
  if (r.memory) {
    const m = r.memory;
    lines.push(
      `memory: SRAM plan ${kb(m.sramPeakBytes)} of ${kb(m.sramBytes)} SRAM (activations alone ${kb(m.peakActivationBytes)}, ` +
        `workspace ${kb(m.workspaceBytes)}, DMA buffers ${kb(m.dmaBytes[0] + m.dmaBytes[1])}; tpacker's ${m.plan.method} placement, ${m.io} io); ` +
        `weights ${kb(m.weightBytes)} (PSRAM ${kb(m.psramBytes)})`,
    );
    for (const l of m.layers)
      lines.push(
        `  ${(l.layer || '(model)').padEnd(24)} ${l.op.padEnd(20)} out ${kb(l.activationBytes).padStart(9)}  weights ${kb(l.weightBytes).padStart(9)}` +
          (l.workspaceBytes ? `  workspace ${kb(l.workspaceBytes).padStart(9)}` : ''),
      );
  }
  lines.push(
    `${errors} error${errors === 1 ? '' : 's'}, ${r.findings.length - errors} warning${r.findings.length - errors === 1 ? '' : 's'}`,
  );
  return lines.join('\n');
}

/** The command: exit 0 when nothing is refused, 1 on an error finding or an unusable input, 2 on a usage error. */
export async function runCheckChip(args: string[], out: (s: string) => void, err: (s: string) => void = out): Promise<number> {
  let values: { checkpoint?: string; platform?: string; io?: string; json?: boolean; help?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        checkpoint: { type: 'string', short: 'c' },
        platform: { type: 'string' },
        io: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (e) {
    err(`linger check-chip: ${(e as Error).message}\n\n${CHECK_CHIP_USAGE}`);
    return 2;
  }
  if (values.help) {
    out(CHECK_CHIP_USAGE);
    return 0;
  }
  const usage = (m: string) => {
    err(`linger check-chip: ${m}\n\n${CHECK_CHIP_USAGE}`);
    return 2;
  };
  if (positionals.length !== 1) return usage(`expected one model file, checkpoint or ONNX file, got ${positionals.length}`);
  const platform = values.platform ?? 'venus';
  if (!PLATFORMS[platform]) return usage(`--platform must be one of ${Object.keys(PLATFORMS).join(', ')}, got '${platform}'`);
  const io = values.io ?? 'float';
  if (io !== 'float' && io !== 'int') return usage(`--io must be float or int, got '${io}'`);
  const file = positionals[0];
  try {
    let report: ChipReport;
    if (/\.onnx$/i.test(file)) {
      if (!fs.existsSync(file)) throw new ExportError(`${file}: no such file`);
      report = checkChip(onnx.ModelProto.decode(fs.readFileSync(file)), [], { platform, io });
    } else {
      await initBackend();
      const ckpt = /\.safetensors$|\.pt$/i.test(file) ? file : values.checkpoint;
      const p = await prepareModel(ckpt === file ? undefined : file, ckpt);
      for (const n of p.notes) err(`linger check-chip: note: ${n}`);
      report = checkChip(p.model, p.example(), { platform, io });
    }
    out(values.json ? JSON.stringify(report) : formatReport(report, path.basename(file)));
    return report.findings.some((f) => f.severity === 'error') ? 1 : 0;
  } catch (e) {
    const known = e instanceof ExportError || e instanceof ModelFileError || e instanceof CheckpointFormatError;
    err(`linger check-chip: ${known ? '' : `${file}: `}${e instanceof Error ? e.message : String(e)}`);
    return 1;
  }
}
