// The chip corpus against the real tpacker's verdicts, checked everywhere (no Python, no thinker):
// docs/chip-rules.md. `npm run conformance` exported every case of chipCases.ts with the thinker
// dialect, packed it with the REAL tpacker v1.1.0 and stored whether it refused, at which layer,
// and the memory it planned (test/fixtures/chip/verdicts.json). Here checkChip must say 'error'
// exactly when tpacker refused (or the export refuses), name the same layer, and plan the memory
// tpacker plans (its PSRAM and SHARE_MEM needs).
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { initBackend, randn } from '../../../src/engine/index';
import { checkChip } from '../../../src/engine/chip/index';
import { CHIP_CASES, fixedChipCase, floatChipCase } from './chipCases';

interface Verdict {
  verdict: 'packs' | 'refused' | 'export-refused';
  layer: string;
  refusedLayer?: string;
  op?: string;
  source?: string;
  error?: string;
  memory?: Record<string, number>;
  /** as tpacker's default command packs it (int8 in and out) */
  memoryInt?: Record<string, number>;
}
const FIX = path.join(__dirname, '..', '..', 'fixtures', 'chip', 'verdicts.json');
const verdicts = JSON.parse(fs.readFileSync(FIX, 'utf8')) as { thinker: string; cases: Record<string, Verdict> };

before(async () => {
  await initBackend();
});

describe(`checkChip against tpacker ${verdicts.thinker} (test/fixtures/chip/verdicts.json)`, () => {
  test('the corpus and the verdicts name the same cases (≥ 40)', () => {
    assert.deepEqual(CHIP_CASES.map((c) => c.name).sort(), Object.keys(verdicts.cases).sort());
    assert.ok(CHIP_CASES.length >= 40);
    const refused = Object.values(verdicts.cases).filter((v) => v.verdict === 'refused').length;
    assert.ok(refused >= 15 && refused <= CHIP_CASES.length - 15, `${refused} refusals: the corpus has both sides of the limits`);
  });
  for (const c of CHIP_CASES) {
    const v = verdicts.cases[c.name];
    test(`${c.name}: ${c.about} — tpacker ${v?.verdict}${v?.refusedLayer !== undefined ? ` at '${v.refusedLayer}'` : ''}`, () => {
      const shapeOnly = c.shape;
      const fixed = checkChip(fixedChipCase(c), randn(shapeOnly));
      const errors = fixed.findings.filter((f) => f.severity === 'error');
      const refused = v.verdict !== 'packs';
      assert.equal(errors.length > 0, refused, `fixed model: ${JSON.stringify(errors.map((e) => e.message))}`);
      if (v.verdict === 'refused') {
        assert.equal(errors[0].layer, v.refusedLayer, 'the first error names the layer tpacker stopped at');
        // the finding restates the assert tpacker stopped with (same file)
        assert.equal(errors[0].source.split(':')[0].replace(/^thinker\/(resource_packer\/)?/, ''), v.source!.split(':')[0]);
      }
      if (v.verdict === 'export-refused') assert.equal(errors[0].layer, c.layer);
      // a float model is checked as it will be after traceLayers + init: the same verdict
      const float = checkChip(floatChipCase(c), shapeOnly);
      const ferrors = float.findings.filter((f) => f.severity === 'error');
      assert.equal(ferrors.length > 0, refused, `float model: ${JSON.stringify(ferrors.map((e) => e.message))}`);
      // (a functional op — F.bmm — becomes a module of init's, '_linger_…'; before init it is an op of the root)
      if (refused) assert.equal(ferrors[0].layer, /^_linger_/.test(v.refusedLayer ?? '') ? '' : (v.refusedLayer ?? c.layer));
    });
  }

  // the memory tpacker plans (docs/chip-rules.md, memory): PSRAM (the constants as it packs them)
  // and SHARE_MEM (activations, the ops' workspace and the DMA buffers, placed as its planner
  // places them). The issue asks for the networks within 5%; every model that packs is exact.
  const packs = CHIP_CASES.filter((x) => verdicts.cases[x.name].verdict === 'packs');
  for (const c of packs.filter((x) => x.name.startsWith('net_'))) {
    test(`${c.name}: PSRAM and SHARE_MEM within 5% of tpacker's plan`, () => {
      const m = checkChip(fixedChipCase(c), randn(c.shape)).memory!;
      const t = verdicts.cases[c.name].memory!;
      assert.ok(Math.abs(m.weightBytes / t.PSRAM - 1) <= 0.05, `PSRAM: ours ${m.weightBytes}, tpacker ${t.PSRAM}`);
      assert.ok(Math.abs(m.sramPeakBytes / t.SHARE_MEM - 1) <= 0.05, `SHARE_MEM: ours ${m.sramPeakBytes}, tpacker ${t.SHARE_MEM}`);
      assert.ok(m.peakActivationBytes <= m.sramPeakBytes);
    });
  }
  test(`every model tpacker packs (${packs.length}): PSRAM and SHARE_MEM equal tpacker's`, () => {
    const off = packs.flatMap((c) => {
      const m = checkChip(fixedChipCase(c), randn(c.shape)).memory!;
      const t = verdicts.cases[c.name].memory!;
      return m.weightBytes === t.PSRAM && m.sramPeakBytes === t.SHARE_MEM
        ? []
        : [`${c.name}: PSRAM ${m.weightBytes} / ${t.PSRAM}, SHARE_MEM ${m.sramPeakBytes} / ${t.SHARE_MEM}`];
    });
    assert.deepEqual(off, []);
  });
  test(`every model tpacker packs, with its default command (int8 in and out): the plan with io 'int'`, () => {
    const off = packs.flatMap((c) => {
      const m = checkChip(fixedChipCase(c), randn(c.shape), { io: 'int' }).memory!;
      const t = verdicts.cases[c.name].memoryInt!;
      return m.weightBytes === t.PSRAM && m.sramPeakBytes === t.SHARE_MEM
        ? []
        : [`${c.name}: PSRAM ${m.weightBytes} / ${t.PSRAM}, SHARE_MEM ${m.sramPeakBytes} / ${t.SHARE_MEM}`];
    });
    assert.deepEqual(off, []);
  });
  // a float model, planned from its float export as traceLayers + init will make it: the same
  // plan, except where the two exports differ (the GRU demo: the float export reads h_n, the
  // thinker export slices the last step and splits its input's Transpose)
  test('float models: PSRAM and SHARE_MEM within 5% of tpacker, both ways (the GRU demo within 7% with float io)', () => {
    const off = packs.flatMap((c) =>
      (['float', 'int'] as const).flatMap((io) => {
        const m = checkChip(floatChipCase(c), c.shape, { io }).memory!;
        const t = (io === 'int' ? verdicts.cases[c.name].memoryInt : verdicts.cases[c.name].memory)!;
        const tol = c.name === 'net_demo_gru' && io === 'float' ? 0.07 : 0.05;
        const near = (a: number, b: number) => Math.abs(a / b - 1) <= tol;
        return near(m.weightBytes, t.PSRAM) && near(m.sramPeakBytes, t.SHARE_MEM)
          ? []
          : [`${c.name} (${io} io): PSRAM ${m.weightBytes} / ${t.PSRAM}, SHARE_MEM ${m.sramPeakBytes} / ${t.SHARE_MEM}`];
      }),
    );
    assert.deepEqual(off, []);
  });
});
