// The engine's half of the live chip check (docs/chip-rules.md): every case of
// test/engine/chip/chipCases.ts exported with the thinker dialect as it is — without the
// export's own chip check, so that tpacker judges files it would refuse — for
// scripts/conformance/chip_run.py.
//
//   node --import tsx scripts/conformance/chip_export.ts <out dir> [--only a,b]
import * as fs from 'node:fs';
import * as path from 'node:path';
import { initBackend, randn } from '../../src/engine/index';
import { buildOnnxModel } from '../../src/engine/onnx/index';
import { encodeModel, writeFileAtomic } from '../../src/engine/onnx/proto';
import { CHIP_CASES, fixedChipCase } from '../../test/engine/chip/chipCases';

async function main(): Promise<void> {
  const out = process.argv[2];
  if (!out || out.startsWith('--')) throw new Error('usage: chip_export.ts <out dir> [--only a,b]');
  const i = process.argv.indexOf('--only');
  const only = i > 0 ? process.argv[i + 1].split(',') : undefined;
  await initBackend();
  for (const c of CHIP_CASES) {
    if (only && !only.includes(c.name)) continue;
    const dir = path.join(out, c.name);
    fs.mkdirSync(dir, { recursive: true });
    const meta: Record<string, unknown> = { name: c.name, layer: c.layer, about: c.about, shape: c.shape };
    try {
      const m = fixedChipCase(c);
      writeFileAtomic(
        path.join(dir, 'model.onnx'),
        encodeModel(buildOnnxModel(m, randn(c.shape), { dialect: 'thinker', onWarning: () => {} })),
      );
    } catch (e) {
      meta.exportError = (e as Error).message;
    }
    fs.writeFileSync(path.join(dir, 'case.json'), JSON.stringify(meta) + '\n');
    console.log(`${c.name}: ${meta.exportError ? `export error: ${String(meta.exportError)}` : 'exported'}`);
  }
}

main().catch((e) => {
  console.error(`chip_export: ${(e as Error).stack ?? e}`);
  process.exit(1);
});
