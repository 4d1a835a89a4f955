// The memory comparison of docs/chip-rules.md: for every corpus model tpacker packed, checkChip's
// plan next to the memory tpacker reported (test/fixtures/chip/verdicts.json, "MemType.<X> need
// capacity"): weights against PSRAM, activations against SHARE_MEM.
//
//   node --import tsx scripts/conformance/chip_memory.ts [name prefix]
import * as fs from 'node:fs';
import * as path from 'node:path';
import { initBackend, randn } from '../../src/engine/index';
import { checkChip } from '../../src/engine/chip/index';
import { CHIP_CASES, fixedChipCase } from '../../test/engine/chip/chipCases';

async function main(): Promise<void> {
  await initBackend();
  const file = path.join(__dirname, '..', '..', 'test', 'fixtures', 'chip', 'verdicts.json');
  const v = JSON.parse(fs.readFileSync(file, 'utf8')) as { cases: Record<string, { verdict: string; memory?: Record<string, number> }> };
  console.log('| model | weights (ours) | PSRAM (tpacker) | ratio | activation peak (ours) | SHARE_MEM (tpacker) | ratio |');
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  for (const c of CHIP_CASES) {
    const t = v.cases[c.name];
    if (t.verdict !== 'packs' || !t.memory || (process.argv[2] && !c.name.startsWith(process.argv[2]))) continue;
    const m = checkChip(fixedChipCase(c), randn(c.shape)).memory!;
    const r = (a: number, b: number) => (a / b).toFixed(3);
    console.log(
      `| ${c.name} | ${m.weightBytes} | ${t.memory.PSRAM} | ${r(m.weightBytes, t.memory.PSRAM)} | ${m.peakActivationBytes} | ${t.memory.SHARE_MEM} | ${r(m.peakActivationBytes, t.memory.SHARE_MEM)} |`,
    );
  }
}

main().catch((e) => {
  console.error(`chip_memory: ${(e as Error).stack ?? e}`);
  process.exit(1);
});
