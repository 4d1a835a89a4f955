// The thinker conformance fixtures, checked everywhere (no Python, no thinker): docs/onnx.md,
// "thinker conformance". `npm run conformance` ran each case's thinker export through the REAL
// tpacker v1.1.0 and executor and stored the verdicts and thinker's outputs
// (test/fixtures/conformance/thinker/verdicts.json); real linger 1.1.1's export of the same small
// models is in linger_attrs.json. Here:
//   1. every case exports what the file that was run computes (graphHash), or is refused as recorded;
//   2. the engine's integer eval equals thinker's recorded outputs, bit for bit (float32);
//   3. the cases thinker does not run bit-exact are exactly the known ones (docs/onnx.md);
//   4. our thinker nodes carry linger's op types, attribute names and non-scale values.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { initBackend, Tensor, tidy } from '../../../src/engine/index';
import { buildOnnxModel } from '../../../src/engine/onnx/index';
import { onnx } from '../../../src/engine/onnx/proto';
import { caseInputs, fixedCase, graphHash, THINKER_CASES } from './thinkerCases';

const FIX = path.join(__dirname, '..', '..', 'fixtures', 'conformance', 'thinker');
interface Verdict {
  packs: boolean | null;
  passed?: number;
  failed?: number;
  graphHash?: string;
  exportError?: string;
  outputs?: number[][];
  error?: string;
}
const verdicts = JSON.parse(fs.readFileSync(path.join(FIX, 'verdicts.json'), 'utf8')) as {
  thinker: string;
  cases: Record<string, Verdict>;
};
interface LingerNode {
  op: string;
  domain: string;
  inputs: number;
  attributes: Record<string, unknown>;
}
const lingerAttrs = JSON.parse(fs.readFileSync(path.join(FIX, 'linger_attrs.json'), 'utf8')) as {
  cases: Record<string, { nodes?: LingerNode[] }>;
};

/** Cases thinker v1.1.0 packs but does not compute as the engine does (docs/onnx.md records why). */
const KNOWN_DIFFERENT: string[] = [];

before(async () => {
  await initBackend();
});

const f32 = (v: ArrayLike<number>) => Array.from(Float32Array.from(v));

describe('thinker v1.1.0 conformance (committed verdicts of the real tpacker + executor)', () => {
  test('the fixture names thinker v1.1.0 and covers every case', () => {
    assert.match(verdicts.thinker, /v1\.1\.0 \(commit 020ee121\)/);
    assert.deepEqual(
      Object.keys(verdicts.cases)
        .filter((k) => !k.endsWith('_cli'))
        .sort(),
      THINKER_CASES.map((c) => c.name).sort(),
    );
  });

  for (const c of THINKER_CASES) {
    test(`${c.name}: ${c.about}`, () => {
      const v = verdicts.cases[c.name];
      const m = fixedCase(c);
      const xs = caseInputs(c, 4);
      if (c.refused) {
        assert.throws(() => buildOnnxModel(m, xs[0], { dialect: 'thinker' }), { name: 'OnnxExportError', message: c.refused });
        assert.ok(v.exportError && c.refused.test(v.exportError), `the live run was refused the same way: ${v.exportError}`);
        return;
      }
      const warnings: string[] = [];
      const proto = buildOnnxModel(m, xs[0], { dialect: 'thinker', onWarning: (w) => warnings.push(w) });
      assert.equal(
        graphHash(proto),
        v.graphHash,
        'the export computes what the file thinker ran computes (else re-run npm run conformance -- --update)',
      );
      assert.equal(v.packs, true, `tpacker packs it: ${v.error ?? ''}`);
      const known = KNOWN_DIFFERENT.includes(c.name);
      assert.equal(
        v.failed === 0,
        !known,
        known
          ? 'a known difference (docs/onnx.md): fixed now? update KNOWN_DIFFERENT and the docs'
          : `bit-exact on thinker (${v.passed} passed, ${v.failed} failed)`,
      );
      // a layer thinker computes differently is said, naming it; a bit-exact case has nothing to say
      if (known)
        return assert.ok(
          warnings.length > 0 && warnings.every((w) => /at '[^']+': thinker v1\.1\.0 computes it/.test(w)),
          warnings.join('\n'),
        );
      assert.deepEqual(warnings, []);
      xs.forEach((x, k) => {
        const got = f32(tidy(() => m(x) as Tensor).dataSync());
        assert.deepEqual(got, f32(v.outputs![k]), `input ${k}: the engine's eval equals thinker's output`);
      });
    });
  }

  test("the thinker nodes carry real linger's op types, attribute names and non-scale values", () => {
    const byName = new Map(THINKER_CASES.map((c) => [c.linger, c]));
    let compared = 0;
    const differences: string[] = [];
    for (const [name, ref] of Object.entries(lingerAttrs.cases)) {
      const c = byName.get(name);
      if (!c || !ref.nodes || c.refused) continue;
      const m = fixedCase(c);
      const nodes = buildOnnxModel(m, caseInputs(c, 1)[0], { dialect: 'thinker' }).graph!.node!;
      const ours = nodes.map((n) => describeNode(n));
      const theirs = ref.nodes.map((n) => ({ op: `${n.domain ? n.domain + '::' : ''}${n.op}`, attributes: n.attributes }));
      if (ours.map((n) => n.op).join() !== theirs.map((n) => n.op).join()) {
        differences.push(`${name}: ops ${ours.map((n) => n.op).join(' ')} vs linger's ${theirs.map((n) => n.op).join(' ')}`);
        continue;
      }
      ours.forEach((n, i) => {
        const a = JSON.stringify(n.attributes),
          b = JSON.stringify(theirs[i].attributes);
        if (a !== b) differences.push(`${name}: node ${i} (${n.op}) ${a} vs linger's ${b}`);
      });
      compared++;
    }
    assert.deepEqual(differences, []);
    assert.ok(compared >= 6, `${compared} models compared`);
  });
});

/** A node as thinker_linger_attrs.py records one: float attributes by name only. */
function describeNode(n: onnx.INodeProto): { op: string; attributes: Record<string, unknown> } {
  const attributes: Record<string, unknown> = {};
  for (const a of [...n.attribute!].sort((x, y) => (x.name! < y.name! ? -1 : 1))) {
    const t = a.type;
    attributes[a.name!] =
      t === onnx.AttributeProto.AttributeType.FLOAT
        ? '<float>'
        : t === onnx.AttributeProto.AttributeType.INT
          ? Number(a.i)
          : t === onnx.AttributeProto.AttributeType.STRING
            ? new TextDecoder().decode(a.s!)
            : t === onnx.AttributeProto.AttributeType.INTS
              ? a.ints!.map(Number)
              : '<other>';
  }
  return { op: `${n.domain ? n.domain + '::' : ''}${n.opType}`, attributes };
}
