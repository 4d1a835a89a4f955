// The engine's half of the live thinker check (docs/onnx.md, "thinker conformance"): for each case
// of test/engine/conformance/thinkerCases.ts, the thinker export, its inputs (raw float32) and the
// engine's integer eval of them (one value a line, exact), for scripts/conformance/thinker_run.py.
//
//   node --import tsx scripts/conformance/thinker_export.ts <out dir> [--inputs N] [--only a,b]
//   node --import tsx scripts/conformance/thinker_export.ts <out dir> --checkpoint <fixed.safetensors> --name demo_cnn_cli
//        [--images N]   (a demo checkpoint, exported by `linger export`: see thinker_run.py --cli)
import * as fs from 'node:fs';
import * as path from 'node:path';
import { initBackend, tensor, Tensor, tidy } from '../../src/engine/index';
import { buildOnnxModel, exportOnnx } from '../../src/engine/onnx/index';
import { fashionMnistJsonRows } from '../../src/engine/train/data';
import { prepareModel } from '../../src/engine/services/exportModel';
import { caseInputs, fixedCase, graphHash, THINKER_CASES } from '../../test/engine/conformance/thinkerCases';
import type { nn } from '../../src/engine/index';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
}

/** Fashion-MNIST test images (n/10 of each class, from image 6000 on), [1, 1, 28, 28] each. */
export function testImages(n: number): Tensor[] {
  const per = Math.ceil(n / 10);
  const out: Tensor[] = [];
  for (let c = 0; c < 10; c++) {
    for (const r of fashionMnistJsonRows(c).slice(6000, 6000 + per))
      out.push(
        tensor(
          Float32Array.from(r, (v) => v / 255),
          [1, 1, 28, 28],
        ),
      );
  }
  return out.slice(0, n);
}

function writeRun(dir: string, m: nn.Module, inputs: Tensor[]): void {
  inputs.forEach((x, k) => {
    const v = x.dataSync() as Float32Array;
    fs.writeFileSync(path.join(dir, `input_${k}.f32.bin`), Buffer.from(v.buffer, v.byteOffset, v.byteLength));
    const y = tidy(() => m(x) as Tensor).dataSync();
    fs.writeFileSync(path.join(dir, `engine_${k}.txt`), Array.from(y, (e) => String(e)).join('\n') + '\n');
  });
}

async function main(): Promise<void> {
  const out = process.argv[2];
  if (!out || out.startsWith('--'))
    throw new Error('usage: thinker_export.ts <out dir> [--inputs N] [--only a,b] | --checkpoint FILE --name NAME [--images N]');
  await initBackend();
  const ckpt = arg('checkpoint');
  if (ckpt) {
    // a demo checkpoint: the CLI exports it (the file under test); here only the engine's eval
    const name = arg('name') ?? 'checkpoint';
    const dir = path.join(out, name);
    fs.mkdirSync(dir, { recursive: true });
    const p = await prepareModel(undefined, ckpt);
    p.model.eval();
    writeRun(dir, p.model, testImages(Number(arg('images') ?? 200)));
    fs.writeFileSync(
      path.join(dir, 'case.json'),
      JSON.stringify({ name, checkpoint: ckpt, about: `${p.model.typeName()} checkpoint, exported by linger export` }) + '\n',
    );
    return;
  }
  const only = arg('only')?.split(',');
  const n = Number(arg('inputs') ?? 4);
  for (const c of THINKER_CASES) {
    if (only && !only.includes(c.name)) continue;
    const dir = path.join(out, c.name);
    fs.mkdirSync(dir, { recursive: true });
    const m = fixedCase(c);
    const inputs = caseInputs(c, n);
    const meta: Record<string, unknown> = { name: c.name, about: c.about, shape: c.shape };
    try {
      meta.graphHash = graphHash(buildOnnxModel(m, inputs[0], { dialect: 'thinker' }));
      await exportOnnx(m, inputs[0], path.join(dir, 'model.onnx'), { dialect: 'thinker' });
      writeRun(dir, m, inputs);
    } catch (e) {
      meta.exportError = (e as Error).message;
    }
    fs.writeFileSync(path.join(dir, 'case.json'), JSON.stringify(meta) + '\n');
    console.log(`${c.name}: ${meta.exportError ? `export error: ${String(meta.exportError)}` : 'exported'}`);
  }
}

main().catch((e) => {
  console.error(`thinker_export: ${(e as Error).stack ?? e}`);
  process.exit(1);
});
