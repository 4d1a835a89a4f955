// The memory comparison of docs/chip-rules.md: for every corpus model tpacker packed, checkChip's
// plan next to the memory tpacker reported (test/fixtures/chip/verdicts.json, "MemType.<X> need
// capacity"): weights against PSRAM, the planned SRAM against SHARE_MEM, with the placement kept
// (greedy by size / breadth / order), the largest workspace, the DMA buffers and the activations'
// peak alone (a lower bound).
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
  console.log(
    '| model | weights (ours) | PSRAM (tpacker) | ratio | SRAM plan (ours) | SHARE_MEM (tpacker) | ratio | placement | workspace | DMA buffers | activations alone |',
  );
  console.log('|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|');
  for (const c of CHIP_CASES) {
    const t = v.cases[c.name];
    if (t.verdict !== 'packs' || !t.memory || (process.argv[2] && !c.name.startsWith(process.argv[2]))) continue;
    const m = checkChip(fixedChipCase(c), randn(c.shape)).memory!;
    const r = (a: number, b: number) => (a / b).toFixed(3);
    console.log(
      `| ${c.name} | ${m.weightBytes} | ${t.memory.PSRAM} | ${r(m.weightBytes, t.memory.PSRAM)} | ${m.sramPeakBytes} | ${t.memory.SHARE_MEM} | ${r(m.sramPeakBytes, t.memory.SHARE_MEM)} | ${m.plan.method} | ${m.workspaceBytes} | ${m.dmaBytes.join(' + ')} | ${m.peakActivationBytes} |`,
    );
  }
}

main().catch((e) => {
  console.error(`chip_memory: ${(e as Error).stack ?? e}`);
  process.exit(1);
});
