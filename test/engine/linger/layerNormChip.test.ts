// LayerNormInt's eval kernel (docs/fixed-point.md#layernormint): the generated 1/√ table, the
// lookup's normalization, the LUNA rounding shift, the eps term, hand-checked rows (the int32 wrap
// of N·Σx² included) and the layer's eval computing exactly that kernel.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend, linger, manualSeed, nn, randn, tensor, Tensor } from '../../../src/engine/index';
import {
  chipEpsTerm,
  type ChipOptions,
  layerNormChip,
  roundShift,
  RSQRT_Q15,
  RSQRT_TABLE_SIZE,
  rsqrtLookup,
  rsqrtTable,
} from '../../../src/engine/linger/ops/layerNorm/chip';

before(async () => {
  await initBackend();
});

const opts = (o: Partial<ChipOptions>): ChipOptions => ({ qx: 0, shift: 0, lo: -128, hi: 127, chip: true, accLimit: null, ...o });
const ones = (n: number) => new Array<number>(n).fill(1);
const zeros = (n: number) => new Array<number>(n).fill(0);

describe('the Q15 reciprocal square-root table', () => {
  test('768 entries; spot values as in the executor', () => {
    assert.equal(RSQRT_TABLE_SIZE, 768);
    assert.equal(RSQRT_Q15.length, 768);
    // checked against thinker v1.1.0's executor table (all 768 entries agree; these four by hand)
    assert.equal(RSQRT_Q15[0], 32767);
    assert.equal(RSQRT_Q15[1], 32704);
    assert.equal(RSQRT_Q15[100], 27787);
    assert.equal(RSQRT_Q15[767], 16392);
    assert.equal(RSQRT_Q15[90], 28185);
    assert.equal(RSQRT_Q15[104], 27632);
    assert.equal(RSQRT_Q15[128], 26754);
    assert.equal(RSQRT_Q15[512], 18918);
  });

  test('every entry is ⌊32768/√(1 + i/256)⌋ (capped at 32767), strictly decreasing after entry 0', () => {
    const t = rsqrtTable();
    assert.deepEqual(t, RSQRT_Q15);
    for (let i = 0; i < 768; i++) {
      const exact = 32768 / Math.sqrt(1 + i / 256);
      assert.equal(t[i], Math.min(32767, Math.floor(exact)), `entry ${i}`);
      // floor, not round: entry ≤ exact < entry + 1
      if (i > 0) {
        assert.ok(t[i] <= exact && exact < t[i] + 1, `entry ${i}`);
        assert.ok(t[i] < t[i - 1], `entry ${i} decreases`);
      }
    }
  });
});

describe('the lookup: D scaled into [256, 1024) by pairs of bits', () => {
  test('small and large D', () => {
    assert.deepEqual(rsqrtLookup(0), { tab: 32767, q: 4 }); // the chip's own case for D = 0
    assert.deepEqual(rsqrtLookup(1), { tab: 32767, q: 5 }); // 1·4^4 = 256
    assert.deepEqual(rsqrtLookup(3), { tab: 18918, q: 5 }); // 3·256 = 768 → entry 512
    assert.deepEqual(rsqrtLookup(16), { tab: 32767, q: 7 }); // 16·4^2
    assert.deepEqual(rsqrtLookup(6), { tab: 26754, q: 6 }); // 6·4^3 = 384 → entry 128
    assert.deepEqual(rsqrtLookup(256), { tab: 32767, q: 9 });
    assert.deepEqual(rsqrtLookup(1023), { tab: 16392, q: 9 });
    assert.deepEqual(rsqrtLookup(1024), { tab: 32767, q: 10 });
    assert.deepEqual(rsqrtLookup(2 ** 46), { tab: 32767, q: 28 }); // the chip's top pair (bits 46–47)
    assert.deepEqual(rsqrtLookup(2 ** 48 - 1), { tab: 16392, q: 28 });
    assert.deepEqual(rsqrtLookup(2n ** 60n), { tab: 32767, q: 35 }); // past the chip's range: the same rule
    assert.deepEqual(rsqrtLookup(3n * 2n ** 60n), { tab: 18918, q: 35 }); // top bit 61: 3·2^60 >> 52 = 768
  });

  test('tab/2^q ≈ 1024/√D within 0.5% over many D', () => {
    for (let e = 0; e < 48; e++)
      for (const f of [1, 1.3, 1.9, 2.5, 3.7]) {
        const D = Math.floor(2 ** e * f);
        const { tab, q } = rsqrtLookup(D);
        const rel = tab / 2 ** q / (1024 / Math.sqrt(D));
        assert.ok(Math.abs(rel - 1) < 0.005, `D = ${D}: ${rel}`);
      }
  });
});

describe('the LUNA rounding shift and the eps term', () => {
  test('⌊v/2^s + 1/2⌋; no left shift for s ≤ 0; 0 far right', () => {
    assert.equal(roundShift(5, 1), 3);
    assert.equal(roundShift(-5, 1), -2); // half up, also below 0
    assert.equal(roundShift(-6, 2), -1);
    assert.equal(roundShift(-7, 2), -2);
    assert.equal(roundShift(7, 0), 7);
    assert.equal(roundShift(7, -3), 7); // a negative shift leaves the value as it is
    assert.equal(roundShift(2 ** 40, 64), 0);
    assert.equal(roundShift(2 ** 40 + 2 ** 39, 40), 2);
  });

  test('E = ⌊1e-5·2^(2·q_x)·T² + 0.5⌋ in float32, the power an int32 shift', () => {
    assert.equal(chipEpsTerm(5, 8), 1); // 0.655 + 0.5
    assert.equal(chipEpsTerm(6, 8), 3); // 2.62 + 0.5
    assert.equal(chipEpsTerm(0, 600), 4); // 3.6 + 0.5
    assert.equal(chipEpsTerm(16, 8), 0); // 1 << 32 is 1 << 0 on the chip
    assert.equal(chipEpsTerm(16, 8, true), 2748779);
  });
});

describe('the kernel on hand-checked rows', () => {
  test('[1, −1, 1, −1] → ±1 in Q10, then w = 0.5 at 2^15 and the final shift', () => {
    // S1 = 0, S2 = 4, D = 16 (E = 0): tab 32767, q 7; y1 = ⌊±4·32767/128 + 1/2⌋ = ±1024
    const y1 = layerNormChip([1, -1, 1, -1], 4, ones(4), zeros(4), opts({ lo: -32768, hi: 32767 }));
    assert.deepEqual(Array.from(y1), [1024, -1024, 1024, -1024]);
    // acc = ±1024·16384 = ±2^24; shift 10 + 15 − 6 = 19 → ±32
    const y = layerNormChip([1, -1, 1, -1], 4, new Array(4).fill(16384), zeros(4), opts({ shift: 19 }));
    assert.deepEqual(Array.from(y), [32, -32, 32, -32]);
  });

  test('[0, 1, 2]: rounding of y1 and of the final shift, saturation to int8', () => {
    // S1 = 3, S2 = 5, D = 6: tab 26754, q 6; num = 3x − 3 = −3, 0, 3; y1 = ±⌊80262/64 + 1/2⌋ = ±1254
    assert.deepEqual(Array.from(layerNormChip([0, 1, 2], 3, ones(3), zeros(3), opts({ lo: -32768, hi: 32767 }))), [-1254, 0, 1254]);
    // (−1254 + 8)/16 = −77.875 → −78; 1254/16 = 78.375 → 78; 2/16 → 0
    assert.deepEqual(Array.from(layerNormChip([0, 1, 2], 3, ones(3), [8, 2, 0], opts({ shift: 4 }))), [-78, 0, 78]);
    assert.deepEqual(Array.from(layerNormChip([0, 1, 2], 3, ones(3), zeros(3), opts({ shift: 0 }))), [-128, 0, 127]);
    // a negative final shift (s_o > 1024·s_w) shifts nothing
    assert.deepEqual(Array.from(layerNormChip([0, 1, 2], 3, ones(3), zeros(3), opts({ shift: -2 }))), [-128, 0, 127]);
    // the engine's normalizeData clamp on acc, then the o_bits range
    assert.deepEqual(Array.from(layerNormChip([0, 1, 2], 3, ones(3), zeros(3), opts({ shift: 4, accLimit: 800 }))), [-50, 0, 50]);
    assert.deepEqual(Array.from(layerNormChip([0, 1, 2], 3, ones(3), zeros(3), opts({ shift: 4, lo: -8, hi: 7 }))), [-8, 0, 7]);
  });

  test('a constant row: D = E, y1 = 0', () => {
    assert.deepEqual(Array.from(layerNormChip([5, 5, 5, 5], 4, ones(4), [3, -3, 0, 40], opts({ qx: 6, shift: 3 }))), [0, 0, 0, 5]);
  });

  test("600 codes ±127: T·Σx² wraps in the chip's int32 (y1 2008 instead of 1024)", () => {
    const x = Array.from({ length: 600 }, (_, i) => (i % 2 ? -127 : 127));
    const wide = { lo: -32768, hi: 32767 };
    // S1 = 0, T·S2 = 5 806 440 000 → 1 511 472 704 after the wrap; + E = 4: tab 27632, q 20
    const chip = layerNormChip(x, 600, ones(600), zeros(600), opts(wide));
    assert.equal(chip[0], 2008);
    assert.equal(chip[1], -2008);
    // the generalized kernel (exact products): D = 5 806 440 004, tab 28185, q 21
    const exact = layerNormChip(x, 600, ones(600), zeros(600), opts({ ...wide, chip: false }));
    assert.equal(exact[0], 1024);
    assert.equal(exact[1], -1024);
  });

  test('400 codes ±127: the wrapped D is negative (outside the chip table): the exact D', () => {
    const x = Array.from({ length: 400 }, (_, i) => (i % 2 ? -127 : 127));
    const wide = { lo: -32768, hi: 32767 };
    const chip = layerNormChip(x, 400, ones(400), zeros(400), opts(wide));
    assert.deepEqual(chip, layerNormChip(x, 400, ones(400), zeros(400), opts({ ...wide, chip: false })));
    assert.equal(chip[0], 1024);
  });

  test('several rows are independent', () => {
    const a = layerNormChip([0, 1, 2], 3, ones(3), zeros(3), opts({ shift: 4 }));
    const b = layerNormChip([1, -1, 1], 3, ones(3), zeros(3), opts({ shift: 4 }));
    const ab = layerNormChip([0, 1, 2, 1, -1, 1], 3, ones(3), zeros(3), opts({ shift: 4 }));
    assert.deepEqual(Array.from(ab), [...a, ...b]);
  });
});

describe("LayerNormInt's eval is the kernel", () => {
  function calibrated(eps: number): nn.Sequential {
    manualSeed(11);
    const m = new nn.Sequential(new nn.LayerNorm(16, { eps }));
    linger.init(m, { quantModules: ['LayerNorm'] });
    m.at(0).loadStateDict(
      {
        weight: tensor(Float32Array.from({ length: 16 }, (_, i) => 0.4 + ((i * 7) % 5) / 4)),
        bias: tensor(Float32Array.from({ length: 16 }, (_, i) => (i - 7) / 30)),
      },
      { strict: false },
    );
    linger.calibrate(
      m,
      Array.from({ length: 6 }, () => randn([4, 3, 16])),
    );
    m.eval();
    return m;
  }

  test('output codes = layerNormChip(input codes, weight and bias codes, the scales)', () => {
    const m = calibrated(1e-5);
    const ln = m.at(0) as nn.LayerNormInt;
    manualSeed(12);
    const x = randn([2, 3, 16]).mul(1.5);
    const y = m(x) as Tensor;
    const sd = m.stateDict();
    const sx = sd['0.scale_x'].item(),
      so = sd['0.scale_o'].item();
    assert.equal(y.quantScale, so);
    const { sw, qw, qb } = ln.affineCodes();
    assert.equal(sd['0.scale_w'].item(), sw);
    const codes = Array.from(x.dataSync(), (v) => Math.min(127, Math.max(-128, Math.floor(Math.fround(v * sx) + 0.5))));
    const want = layerNormChip(codes, 16, qw, qb, {
      qx: Math.log2(sx),
      shift: 10 + Math.log2(sw) - Math.log2(so),
      lo: -128,
      hi: 127,
      chip: true,
      accLimit: null,
    });
    const got = Array.from(y.dataSync(), (v) => v * so);
    assert.deepEqual(got, Array.from(want));
    assert.ok(new Set(got).size > 20, 'a non-trivial output');
  });

  test("the layer's eps does not enter the eval (the chip fixes it at 1e-5); training uses it", () => {
    const m = calibrated(1e-5);
    const ln = m.at(0) as nn.LayerNormInt;
    const setEps = (v: number) => ((ln as unknown as { eps: number }).eps = v);
    manualSeed(13);
    const x = randn([2, 3, 16]);
    const y = (m(x) as Tensor).dataSync();
    setEps(0.5);
    assert.deepEqual((m(x) as Tensor).dataSync(), y);
    m.train();
    const big = (m(x) as Tensor).dataSync();
    setEps(1e-5);
    assert.notDeepEqual((m(x) as Tensor).dataSync(), big);
  });
});
