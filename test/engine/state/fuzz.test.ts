// Checkpoint fuzzing: valid checkpoints mutated ≥ 1,000 ways (truncation, flipped bytes, header
// lengths, offsets, overlaps, dtypes, shapes, metadata, JSON garbage). Every case must end in a
// CheckpointFormatError naming the file, or (where the mutation leaves a valid file) a load;
// nothing may crash, hang, leak tensors, or allocate more than the file holds.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { F, initBackend, linger, optim, rand, randn, Tensor, tensor } from '../../../src/engine/index';
import { tf } from '../../../src/engine/backend/tf';
import { inspectCheckpoint } from '../../../src/engine/services/inspect';
import { readCheckpointInfo } from '../../../src/engine/state/checkpoint';
import { CheckpointFormatError } from '../../../src/engine/state/safetensors';
import { STATE_FIXTURES, TINY_INPUT, TinyNet } from './stateFixtures';
import { prng } from '../prng';

before(async () => {
  await initBackend();
});

interface Parsed {
  hlen: number;
  header: Record<string, unknown>;
  data: Buffer;
}
function split(buf: Buffer): Parsed {
  const hlen = Number(buf.readBigUInt64LE(0));
  return { hlen, header: JSON.parse(buf.subarray(8, 8 + hlen).toString('utf8')) as Record<string, unknown>, data: buf.subarray(8 + hlen) };
}
function join(headerText: string, data: Uint8Array, hlen?: bigint): Buffer {
  const json = Buffer.from(headerText, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(hlen ?? BigInt(json.length));
  return Buffer.concat([len, json, data]);
}
/** Re-serializes a header object with an own '__proto__'-safe copy. */
const text = (h: Record<string, unknown>) => JSON.stringify(h);

type Expect = 'error' | 'any';
interface Case {
  name: string;
  bytes: Buffer;
  expect: Expect;
}

function tensorNames(h: Record<string, unknown>): string[] {
  return Object.keys(h).filter((k) => k !== '__metadata__');
}

/** All the mutations of one base file. */
function mutations(base: string, buf: Buffer, seed: number, scale: number): Case[] {
  const r = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
  const int = (n: number) => Math.floor(r() * n);
  const { hlen, header, data } = split(buf);
  const names = tensorNames(header);
  const out: Case[] = [];
  const add = (name: string, bytes: Buffer, expect: Expect = 'any') => out.push({ name: `${base}/${name}`, bytes, expect });
  const withHeader = (name: string, edit: (h: Record<string, unknown>) => void, expect: Expect = 'any', body: Uint8Array = data) => {
    const h = JSON.parse(JSON.stringify(header)) as Record<string, unknown>;
    edit(h);
    add(name, join(text(h), body), expect);
  };
  const entry = (h: Record<string, unknown>, n: string) => h[n] as { dtype: unknown; shape: unknown; data_offsets: unknown };

  // truncation: every byte of the length and the start of the header, then spread over the rest
  const cuts = new Set<number>();
  for (let i = 0; i < Math.min(buf.length, 64); i++) cuts.add(i);
  for (let i = 0; i < 120 * scale; i++) cuts.add(int(buf.length));
  for (const k of [8 + hlen - 1, 8 + hlen, 8 + hlen + 1, buf.length - 1]) cuts.add(k);
  for (const c of cuts) if (c < buf.length) add(`truncate@${c}`, buf.subarray(0, c), 'error');
  // flipped bytes: in the length, the header, the data
  for (let i = 0; i < 160 * scale; i++) {
    const b = Buffer.from(buf);
    const region = i % 3;
    const n = 1 + int(4);
    for (let j = 0; j < n; j++) {
      const at = region === 0 ? int(8) : region === 1 ? 8 + int(hlen) : 8 + hlen + int(Math.max(1, data.length));
      if (at < b.length) b[at] ^= 1 << int(8);
    }
    add(`flip${n}@${['length', 'header', 'data'][region]}#${i}`, b);
  }
  // header lengths: off by a little, huge, at and beyond the limit
  const lens = [
    0n,
    1n,
    2n,
    7n,
    BigInt(hlen - 1),
    BigInt(hlen + 1),
    BigInt(hlen + 8),
    BigInt(buf.length - 8),
    BigInt(buf.length),
    2n ** 31n,
    2n ** 32n + BigInt(hlen),
    2n ** 53n,
    2n ** 63n,
    2n ** 64n - 1n,
    100n * 1024n * 1024n,
    100n * 1024n * 1024n + 1n,
  ];
  for (const l of lens) {
    const b = Buffer.from(buf);
    b.writeBigUInt64LE(l);
    add(`hlen=${l}`, b, l === BigInt(hlen) ? 'any' : 'error');
  }
  // offsets: out of range, reversed, fractional, negative, wrong type, overlapping another tensor
  const badOffsets: unknown[] = [
    [-1, 4],
    [0, data.length + 1],
    [data.length, data.length + 4],
    [8, 0],
    [0.5, 4.5],
    ['0', '4'],
    [0],
    [0, 4, 8],
    null,
    'x',
    {},
    [2 ** 53, 2 ** 53 + 4],
    [0, 2 ** 64],
    [1e308, 1e308],
  ];
  for (const [i, o] of badOffsets.entries()) {
    const n = pick(names);
    withHeader(
      `offsets(${n})=${JSON.stringify(o)}`,
      (h) => {
        entry(h, n).data_offsets = o;
      },
      'error',
    );
    if (i < 6)
      withHeader(
        `offsets-missing(${n})#${i}`,
        (h) => {
          delete (entry(h, n) as Record<string, unknown>).data_offsets;
        },
        'error',
      );
  }
  for (let i = 0; i < 30 * scale && names.length > 1; i++) {
    const a = pick(names),
      b = pick(names.filter((x) => x !== a));
    withHeader(`overlap(${a}<-${b})#${i}`, (h) => {
      entry(h, a).data_offsets = entry(h, b).data_offsets;
    });
    withHeader(
      `shift(${a})#${i}`,
      (h) => {
        const [s, e] = entry(h, a).data_offsets as number[];
        const d = 1 + int(8);
        entry(h, a).data_offsets = [s + d, e + d];
      },
      'error',
    );
  }
  // dtypes: unknown, wrong types, and same-size swaps (which can leave a valid file)
  const dtypes: unknown[] = [
    'F8',
    'float32',
    'f32',
    '',
    'C64',
    'U16',
    'U32',
    'U64',
    'BF8',
    123,
    null,
    {},
    ['F32'],
    'F32 ',
    'I64',
    'F64',
    'F16',
    'BF16',
    'I32',
    'I16',
    'I8',
    'U8',
    'BOOL',
  ];
  for (const d of dtypes) {
    const n = pick(names);
    withHeader(`dtype(${n})=${JSON.stringify(d)}`, (h) => {
      entry(h, n).dtype = d;
    });
  }
  // shapes
  const shapes: unknown[] = [
    [-1],
    [1.5],
    ['a'],
    [2 ** 53],
    [2 ** 31, 2 ** 31],
    [],
    Array(40).fill(1),
    null,
    'x',
    [0],
    [1, 2, 3, 4, 5, 6, 7, 8, 9],
    [2 ** 60, 0],
  ];
  for (const s of shapes) {
    const n = pick(names);
    withHeader(`shape(${n})=${JSON.stringify(s).slice(0, 30)}`, (h) => {
      entry(h, n).shape = s;
    });
  }
  for (const n of names.slice(0, 4)) {
    withHeader(
      `shape-doubled(${n})`,
      (h) => {
        entry(h, n).shape = [...(entry(h, n).shape as number[]), 2];
      },
      'error',
    );
  }
  // entries: wrong kinds, removed, renamed to special names
  for (const v of [null, 1, 'x', [], true]) {
    const n = pick(names);
    withHeader(
      `entry(${n})=${JSON.stringify(v)}`,
      (h) => {
        h[n] = v;
      },
      'error',
    );
  }
  for (const n of names.slice(0, 6))
    withHeader(
      `remove(${n})`,
      (h) => {
        delete h[n];
      },
      'error',
    );
  for (const special of ['__proto__', 'stage', '', 'constructor', '__optimizer__/x/y', '__optimizer__/0/', 'a'.repeat(10000)]) {
    const n = pick(names);
    withHeader(`rename(${n}->${special.slice(0, 20)})`, (h) => {
      const v = h[n];
      delete h[n];
      Object.defineProperty(h, special, { value: v, enumerable: true, configurable: true, writable: true });
    });
  }
  // metadata
  const metas: [string, unknown][] = [
    ['__metadata__', null],
    ['__metadata__', []],
    ['__metadata__', { a: 1 }],
    ['__metadata__', { a: null }],
    ['__metadata__', 'x'],
    ['linger.stage', 'frozen'],
    ['linger.stage', ''],
    ['linger.format', 'linger-studio/2'],
    ['linger.format', 'other'],
    ['linger.metrics', '[1]'],
    ['linger.metrics', '{"a": "b"}'],
    ['linger.metrics', '{'],
    ['linger.module_tree', '{}'],
    ['linger.module_tree', '[{"path": 1}]'],
    ['linger.module_tree', '[{"path":"a","type":"B","bits":{"data":99}}]'],
    ['linger.module_tree', '[{"path":"a","type":"B","normalize":{"data":"x"}}]'],
    ['linger.input_shape', '[0]'],
    ['linger.input_shape', '"x"'],
    ['linger.input_shape', '[1e400]'],
    ['linger.graph', '[]'],
    ['linger.graph', '{"nodes": 5}'],
    ['linger.transforms', '["compile"]'],
    ['linger.optimizer', '{'],
    ['linger.optimizer', '{"type": "SGD"}'],
    ['linger.optimizer', '{"type":"SGD","param_groups":[{"lr":"x","params":[0]}],"state":{}}'],
    ['linger.optimizer', '{"type":"SGD","param_groups":[{"lr":1,"params":[0]}],"state":{"7":{"step":1}}}'],
    ['linger.optimizer', '{"type":"SGD","param_groups":[{"lr":1,"params":[]}],"state":{}}'],
  ];
  for (const [k, v] of metas) {
    withHeader(`meta(${k}=${JSON.stringify(v).slice(0, 40)})`, (h) => {
      if (k === '__metadata__') h.__metadata__ = v;
      else h.__metadata__ = { ...(h.__metadata__ as object | undefined), [k]: v };
    });
  }
  // JSON garbage: token soup of the header's length (no NaN tokens), deep nesting, cut-off text, duplicates
  const tokens = [
    '{',
    '}',
    '[',
    ']',
    ':',
    ',',
    '"',
    '"a"',
    '0',
    '-1',
    '1e999',
    'true',
    'null',
    ' ',
    '\\',
    '"\\u0000"',
    '"F32"',
    '"shape"',
    '"data_offsets"',
    '\u00e9',
    '\ud800',
  ];
  for (let i = 0; i < 40 * scale; i++) {
    let s = '';
    while (Buffer.byteLength(s) < hlen) s += pick(tokens);
    add(`garbage#${i}`, join(s, data), 'error');
  }
  for (const depth of [10, 1000, 100000]) {
    add(`nested-array(${depth})`, join('['.repeat(depth) + ']'.repeat(depth), data), 'error');
    add(`nested-object(${depth})`, join('{"a":'.repeat(depth) + '1' + '}'.repeat(depth), data), 'error');
  }
  const json = buf.subarray(8, 8 + hlen).toString('utf8');
  for (let i = 0; i < 10 * scale; i++) {
    const cut = int(json.length);
    add(`json-cut@${cut}`, join(json.slice(0, cut), data), 'error');
  }
  const dup = names[0];
  add('duplicate-key', join(`{${JSON.stringify(dup)}:${JSON.stringify(header[dup])},${json.slice(1)}`, data));
  // data: trailing bytes, a missing tail, bytes inserted
  add('trailing-byte', join(json, Buffer.concat([data, Buffer.from([0])])), 'error');
  add('trailing-8', join(json, Buffer.concat([data, Buffer.alloc(8)])), 'error');
  add('inserted-byte', join(json, Buffer.concat([data.subarray(0, 3), Buffer.from([7]), data.subarray(3)])), 'error');
  return out;
}

/** Base files: small engine checkpoints (float with optimizer state, fixed with graph and tree), a plain one. */
async function bases(dir: string): Promise<[string, Buffer, number][]> {
  const tiny = new TinyNet();
  const opt = new optim.SGD(tiny.parameters(), { lr: 0.1, momentum: 0.9 });
  opt.step(() => F.crossEntropy(tiny(rand(TINY_INPUT)) as Tensor, tensor([0, 2], [2], 'int32')));
  const a = await linger.save(tiny, path.join(dir, 'float-opt.safetensors'), { optimizer: opt, metrics: { acc: 0.5 }, parent: 'x' });
  const fixed = new TinyNet();
  linger.traceLayers(fixed, fixed, randn(TINY_INPUT));
  linger.normalizeLayers(fixed);
  linger.init(fixed);
  linger.calibrate(fixed, [rand(TINY_INPUT)]);
  const b = await linger.save(fixed, path.join(dir, 'fixed.safetensors'));
  const c = await linger.save({ w: tensor([1, 2, 3, 4]), n: tensor([3], [1], 'int32') }, path.join(dir, 'dict.safetensors'));
  return [
    ['float-opt', fs.readFileSync(a), 1],
    ['fixed', fs.readFileSync(b), 1],
    ['dict', fs.readFileSync(c), 0.5],
    ['torch', fs.readFileSync(path.join(STATE_FIXTURES, 'torch_democnn.safetensors')), 0.15],
  ];
}

test('≥ 1,000 mutated checkpoints: a clean CheckpointFormatError or a load, nothing else', { timeout: 300_000 }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'linger-fuzz-'));
  try {
    const cases: Case[] = [];
    for (const [i, [name, buf, scale]] of (await bases(dir)).entries()) cases.push(...mutations(name, buf, 1000 + i, scale));
    assert.ok(cases.length >= 1000, `${cases.length} cases`);
    const file = path.join(dir, 'case.safetensors');
    const bad: string[] = [];
    let errors = 0,
      loads = 0,
      slowest = 0,
      slowestName = '',
      maxRatio = 0;
    const tensors0 = tf.memory().numTensors;
    const mem0 = process.memoryUsage();
    let peakRss = mem0.rss;
    const t0 = performance.now();
    for (const c of cases) {
      fs.writeFileSync(file, c.bytes);
      const size = c.bytes.length;
      let allocated = 0;
      const allocate = (n: number) => {
        allocated += n;
        if (allocated > size) throw new Error(`allocated ${allocated} bytes for a ${size}-byte file`);
        return Buffer.allocUnsafe(n);
      };
      const s = performance.now();
      let outcome: 'error' | 'load';
      let loadError = '';
      try {
        const ck = await linger.loadCheckpoint(file, { allocate });
        outcome = 'load';
        for (const v of Object.values(ck.stateDict)) v.dispose();
        for (const e of Object.values(ck.optimizer?.state ?? {})) for (const v of Object.values(e)) if (v instanceof Tensor) v.dispose();
      } catch (e) {
        outcome = 'error';
        loadError = e instanceof Error ? e.message : String(e);
        if (!(e instanceof CheckpointFormatError) || !e.message.startsWith(`${file}: `)) {
          bad.push(`${c.name}: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`.slice(0, 300));
        }
      }
      // the viewer paths agree with the loader on what is valid (the header-only one cannot see int64 range)
      for (const [what, fn] of [
        ['inspect', () => inspectCheckpoint(file)],
        ['info', () => readCheckpointInfo(file, { allocate: (n) => Buffer.allocUnsafe(n) })],
      ] as const) {
        try {
          fn();
          if (outcome === 'error' && what === 'inspect' && !/does not fit the engine's int32/.test(loadError))
            bad.push(`${c.name}: inspect accepted a file the loader refused`);
        } catch (e) {
          if (!(e instanceof CheckpointFormatError))
            bad.push(`${c.name}: ${what}: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`.slice(0, 300));
          else if (outcome === 'load') bad.push(`${c.name}: ${what} refused a file the loader accepted: ${e.message}`);
        }
      }
      if (outcome === 'error') errors++;
      else {
        loads++;
        if (c.expect === 'error') bad.push(`${c.name}: loaded, but this mutation can never be valid`);
      }
      maxRatio = Math.max(maxRatio, allocated / Math.max(1, size));
      const ms = performance.now() - s;
      if (ms > slowest) {
        slowest = ms;
        slowestName = c.name;
      }
      peakRss = Math.max(peakRss, process.memoryUsage().rss);
    }
    const elapsed = performance.now() - t0;
    t.diagnostic(
      `${cases.length} cases in ${(elapsed / 1000).toFixed(1)} s: ${errors} clean errors, ${loads} loads; slowest ${slowest.toFixed(1)} ms (${slowestName}); ` +
        `reader allocation ≤ ${maxRatio.toFixed(3)}× the file; RSS growth ${((peakRss - mem0.rss) / 2 ** 20).toFixed(1)} MB`,
    );
    assert.deepEqual(bad.slice(0, 20), [], `${bad.length} bad outcomes`);
    assert.ok(maxRatio <= 1, 'the reader never allocates more than the file size');
    assert.equal(tf.memory().numTensors, tensors0, 'no tensors left behind');
    assert.ok(slowest < 5000, `no case hangs (slowest ${slowest} ms)`);
    // the largest base is 0.8 MB; refusing a 2^63-byte header must not show up here
    assert.ok(peakRss - mem0.rss < 512 * 2 ** 20, `RSS grew by ${(peakRss - mem0.rss) / 2 ** 20} MB`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
