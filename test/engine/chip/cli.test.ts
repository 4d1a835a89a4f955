// `linger check-chip` (docs/chip-rules.md): a model file, a checkpoint, an ONNX file; exit codes and messages.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initBackend, linger, manualSeed, nn, randn } from '../../../src/engine/index';
import { buildOnnxModel } from '../../../src/engine/onnx/index';
import { encodeModel } from '../../../src/engine/onnx/proto';
import { runCheckChip } from '../../../src/engine/cli/checkChip';
import type { ChipReport } from '../../../src/engine/chip/index';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'linger-check-chip-'));
const STEM = path.join(dir, 'stem.ts');
fs.writeFileSync(
  STEM,
  `import { nn } from 'linger-studio';
export const inputShape = [1, 1, 16, 16];
export function createModel() {
  return new nn.Sequential({ stem: new nn.Conv2d(1, 4, 7, { stride: 2, padding: 3 }), relu: new nn.ReLU() });
}
`,
);
const OK = path.join(dir, 'ok.ts');
fs.writeFileSync(
  OK,
  `import { nn } from 'linger-studio';
export const inputShape = [1, 1, 16, 16];
export function createModel() {
  return new nn.Sequential({ conv: new nn.Conv2d(1, 4, 3, { padding: 1 }), pool: new nn.MaxPool2d(2) });
}
`,
);

async function run(args: string[]) {
  const out: string[] = [],
    err: string[] = [];
  const code = await runCheckChip(
    args,
    (s) => out.push(s),
    (s) => err.push(s),
  );
  return { code, out: out.join('\n'), err: err.join('\n') };
}

before(async () => {
  await initBackend();
});

describe('linger check-chip', () => {
  test('a model file with a 7×7 conv: exit 1, the layer, rule, source and suggestion', async () => {
    const r = await run([STEM]);
    assert.equal(r.code, 1, r.err);
    assert.match(r.out, /^stem\.ts: venus \(thinker v1\.1\.0 \(tpacker\)\)/);
    assert.match(
      r.out,
      /error: stem \(Conv2dInt\): kernel 7×7 is larger than .* \[conv-kernel; thinker\/resource_packer\/ops\/Conv2dInt\.py:32\]/,
    );
    assert.match(r.out, /suggestion: split it into 3 stacked 3×3 convs/);
    assert.match(r.out, /1 error, 0 warnings$/);
  });

  test('a model file that packs: exit 0, the memory table; --json is the report', async () => {
    const r = await run([OK]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /no findings/);
    assert.match(r.out, /memory: SRAM plan .* of 640\.0 KB SRAM \(activations alone .*placement, float io\)/);
    // as tpacker's default command packs it: int8 in and out
    assert.match((await run([OK, '--io', 'int'])).out, /placement, int io\)/);
    assert.match(r.out, /conv +Conv2dInt +out +1\.0 KB/);
    const j = await run([OK, '--json']);
    const rep = JSON.parse(j.out) as ChipReport;
    assert.equal(rep.platform, 'venus');
    assert.deepEqual(rep.findings, []);
    assert.equal(rep.memory!.layers.find((l) => l.layer === 'conv')!.activationBytes, 4 * 16 * 16);
  });

  test('an ONNX file and a fixed checkpoint are checked as they are', async () => {
    manualSeed(7);
    const m = new nn.Sequential({ stem: new nn.Conv2d(1, 4, 7, { stride: 2, padding: 3 }), relu: new nn.ReLU() });
    const x = randn([1, 1, 16, 16]);
    linger.traceLayers(m, m, x);
    linger.init(m);
    linger.calibrate(m, [randn([2, 1, 16, 16])]);
    m.eval();
    const file = path.join(dir, 'stem.onnx');
    fs.writeFileSync(file, encodeModel(buildOnnxModel(m, x, { dialect: 'thinker' })));
    const r = await run([file, '--json']);
    assert.equal(r.code, 1);
    assert.deepEqual(
      (JSON.parse(r.out) as ChipReport).findings.map((f) => [f.layer, f.rule]),
      [['stem', 'conv-kernel']],
    );
    const ck = await linger.save(m, path.join(dir, 'stem.safetensors'));
    const c = await run([STEM, '--checkpoint', ck]);
    assert.equal(c.code, 1, c.err);
    assert.match(c.out, /error: stem \(Conv2dInt\)/);
  });

  test('usage errors exit 2 with the usage; a missing file exits 1', async () => {
    for (const [args, msg] of [
      [[], /expected one model file, checkpoint or ONNX file, got 0/],
      [[OK, '--platform', 'mars'], /--platform must be one of venus, arcs, venusA, got 'mars'/],
      [[OK, '--io', 'int16'], /--io must be float or int, got 'int16'/],
      [[OK, '--bogus'], /Unknown option '--bogus'/],
    ] as [string[], RegExp][]) {
      const r = await run(args);
      assert.equal(r.code, 2, args.join(' '));
      assert.match(r.err, msg);
      assert.match(r.err, /usage: linger check-chip/);
    }
    const r = await run([path.join(dir, 'nope.onnx')]);
    assert.equal(r.code, 1);
    assert.match(r.err, /nope\.onnx: no such file$/);
  });
});
