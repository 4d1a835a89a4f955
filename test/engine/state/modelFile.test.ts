// Model files (SPEC §2): .ts/.js modules exporting createModel() and inputShape, loaded with
// 'linger-studio' resolved to the running engine; every mistake a user can make is a clear error.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initBackend, nn, randn, Tensor } from '../../../src/engine/index';
import { loadModelFile, ModelFileError } from '../../../src/engine/modelFile';

before(async () => {
  await initBackend();
});

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'linger-modelfile-'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
function write(name: string, source: string): string {
  const file = path.join(dir, name);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, source);
  return file;
}

const TS_MODEL = `import { nn, Tensor } from 'linger-studio';
import { hidden } from './sizes';

export class SmallNet extends nn.Module {
  conv = new nn.Conv2d(1, 4, 3, { padding: 1 });
  bn = new nn.BatchNorm2d(4);
  relu = new nn.ReLU();
  flatten = new nn.Flatten();
  fc = new nn.Linear(4 * 8 * 8, hidden);
  forward(x: Tensor): Tensor {
    return this.fc(this.flatten(this.relu(this.bn(this.conv(x)))));
  }
}
export const inputShape: number[] = [1, 1, 8, 8];
export function createModel(): nn.Module { return new SmallNet(); }
`;

describe('loadModelFile', () => {
  test('a TypeScript file importing linger-studio (and a relative module) gives models of the running engine', async () => {
    write('ts/sizes.ts', 'export const hidden: number = 5;\n');
    const mf = await loadModelFile(write('ts/model.ts', TS_MODEL));
    assert.deepEqual(mf.inputShape, [1, 1, 8, 8]);
    const m = mf.createModel();
    assert.ok(m instanceof nn.Module, "the engine's own nn.Module");
    assert.equal(m.typeName(), 'SmallNet', 'class names survive the bundle');
    assert.notEqual(mf.createModel(), m, 'a fresh model per call');
    const y = m(randn(mf.inputShape)) as Tensor;
    assert.deepEqual(y.shape, [1, 5]);
    assert.deepEqual(Object.keys(m.stateDict()).slice(0, 3), ['conv.weight', 'conv.bias', 'bn.weight']);
  });

  test('JavaScript: ES-module syntax, CommonJS require, and a default export object', async () => {
    const esm = await loadModelFile(
      write(
        'esm.mjs',
        `import { nn } from 'linger-studio';
export const inputShape = [2, 3];
export function createModel() { return new nn.Linear(3, 2); }
`,
      ),
    );
    assert.deepEqual((esm.createModel()(randn([2, 3])) as Tensor).shape, [2, 2]);
    const cjs = await loadModelFile(
      write(
        'cjs.js',
        `const { nn } = require('linger-studio');
module.exports = { inputShape: [1, 4], createModel: () => new nn.Sequential(new nn.Linear(4, 4), new nn.ReLU()) };
`,
      ),
    );
    assert.equal(cjs.createModel().typeName(), 'Sequential');
    const dflt = await loadModelFile(
      write(
        'default.ts',
        `import { nn } from 'linger-studio';
export default { inputShape: [1, 2], createModel: () => new nn.Linear(2, 1) };
`,
      ),
    );
    assert.deepEqual(dflt.inputShape, [1, 2]);
  });

  const errors: [string, string, string, RegExp][] = [
    [
      'no createModel',
      'a.ts',
      `export const inputShape = [1, 3];\n`,
      /a\.ts: does not export createModel \(add `export function createModel\(\) \{ return new MyModel\(\); \}`, returning an nn\.Module\)$/,
    ],
    [
      'createModel not a function',
      'b.ts',
      `export const inputShape = [1, 3];\nexport const createModel = 5;\n`,
      /b\.ts: createModel must be a function returning an nn\.Module, got number 5$/,
    ],
    [
      'no inputShape',
      'c.ts',
      `import { nn } from 'linger-studio';\nexport function createModel() { return new nn.ReLU(); }\n`,
      /c\.ts: does not export inputShape \(add e\.g\. `export const inputShape = \[1, 1, 28, 28\];`: NCHW, batch first\) or exampleInput\(\)$/,
    ],
    [
      'exampleInput not returning a Tensor',
      'c2.ts',
      `import { nn } from 'linger-studio';\nexport function exampleInput() { return [1, 2]; }\nexport function createModel() { return new nn.ReLU(); }\n`,
      /c2\.ts: exampleInput\(\) returned \[1, 2\], not a Tensor \(e\.g\. tensor\(values, shape, 'int32'\)\)$/,
    ],
    [
      'inputShape with a zero',
      'd.ts',
      `import { nn } from 'linger-studio';\nexport const inputShape = [1, 0, 28];\nexport function createModel() { return new nn.ReLU(); }\n`,
      /d\.ts: inputShape must be a list of 2 to 8 positive whole numbers \(NCHW, batch first\), got \[1, 0, 28\]$/,
    ],
    [
      'inputShape not a list',
      'e.ts',
      `import { nn } from 'linger-studio';\nexport const inputShape = '1,1,28,28';\nexport function createModel() { return new nn.ReLU(); }\n`,
      /e\.ts: inputShape must be a list .* got string "1,1,28,28"$/,
    ],
    [
      'inputShape without a batch dimension',
      'f.ts',
      `import { nn } from 'linger-studio';\nexport const inputShape = [28];\nexport function createModel() { return new nn.ReLU(); }\n`,
      /f\.ts: inputShape must be a list of 2 to 8 positive whole numbers .* got \[28\]$/,
    ],
    [
      'a syntax error, with file:line:column',
      'g.ts',
      `import { nn } from 'linger-studio';\nexport const inputShape = [1, 3];\nexport function createModel() {\n  return new nn.Linear(3, 2;\n}\n`,
      /g\.ts:4:28: Expected "\)" but found ";"$/,
    ],
    [
      'a missing relative import, with file:line',
      'h.ts',
      `import { nn } from 'linger-studio';\nimport { size } from './nope';\nexport const inputShape = [1, size];\nexport function createModel() { return new nn.ReLU(); }\n`,
      /h\.ts:2:\d+: Could not resolve "\.\/nope"$/,
    ],
    [
      'an error while the file runs',
      'i.ts',
      `export const inputShape = [1, 3];\nthrow new Error('no GPU here');\nexport function createModel() { return null; }\n`,
      /i\.ts: failed while loading: no GPU here$/,
    ],
    ['not a model file', 'j.py', `print(1)\n`, /j\.py: a model file is a \.ts or \.js module/],
  ];
  for (const [name, file, source, msg] of errors) {
    test(name, async () => {
      const p = write(file, source);
      await assert.rejects(loadModelFile(p), (e: unknown) => {
        assert.ok(e instanceof ModelFileError, String(e));
        assert.ok(e.message.startsWith(p), `names the file: ${e.message}`);
        assert.match(e.message, msg);
        return true;
      });
    });
  }

  test('a missing file, and createModel returning something else or throwing: clear errors', async () => {
    await assert.rejects(loadModelFile(path.join(dir, 'absent.ts')), { message: /absent\.ts: no such file$/ });
    const notModule = await loadModelFile(
      write('k.ts', `export const inputShape = [1, 3];\nexport function createModel() { return { forward() {} }; }\n`),
    );
    assert.throws(() => notModule.createModel(), {
      message: /k\.ts: createModel\(\) returned an object \(Object\), not an nn\.Module \(extend nn\.Module from 'linger-studio'\)$/,
    });
    const throwing = await loadModelFile(
      write(
        'l.ts',
        `import { nn } from 'linger-studio';\nexport const inputShape = [1, 3];\nexport function createModel() { return new nn.Linear(3, 0 - 1); }\n`,
      ),
    );
    assert.throws(
      () => throwing.createModel(),
      (e: Error) => e instanceof ModelFileError && /l\.ts: createModel\(\) failed: /.test(e.message),
    );
  });
});
