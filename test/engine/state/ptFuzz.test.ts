// .pt fuzzing (docs/pt-checkpoints.md): valid torch.save files mutated ≥ 1,000 ways (byte flips,
// truncations, zip length and offset fields lied about, and flips inside data.pkl with the CRC
// fixed, so the unpickler sees them). Every case must end in a CheckpointFormatError with a
// message, or a valid load; nothing may crash, hang, or allocate far more than the file holds.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initBackend, linger } from '../../../src/engine/index';
import { CheckpointFormatError } from '../../../src/engine/state/safetensors';
import { crc32 } from '../../../src/engine/state/pt/zip';
import { ROOT } from './stateFixtures';
import { prng } from '../prng';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'linger-ptfuzz-'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
before(async () => {
  await initBackend();
});

interface Cd {
  at: number;
  name: string;
  dataStart: number;
  size: number;
}
/** The central directory entries of a stored zip (a valid one), with where each entry's data is. */
function entries(b: Buffer): Cd[] {
  const out: Cd[] = [];
  for (let p = b.indexOf('PK\x01\x02'); p >= 0; p = b.indexOf('PK\x01\x02', p + 4)) {
    const nl = b.readUInt16LE(p + 28);
    const local = b.readUInt32LE(p + 42);
    const dataStart = local + 30 + b.readUInt16LE(local + 26) + b.readUInt16LE(local + 28);
    out.push({ at: p, name: b.subarray(p + 46, p + 46 + nl).toString(), dataStart, size: b.readUInt32LE(p + 24) });
  }
  return out;
}

function mutations(base: string, buf: Buffer, seed: number): { name: string; bytes: Buffer }[] {
  const r = prng(seed);
  const int = (n: number) => Math.floor(r() * n);
  const out: { name: string; bytes: Buffer }[] = [];
  const add = (name: string, bytes: Buffer) => out.push({ name: `${base}/${name}`, bytes });
  const cds = entries(buf);
  for (let i = 0; i < 120; i++) {
    const cut = i < 40 ? i : int(buf.length);
    add(`truncate@${cut}`, buf.subarray(0, cut));
  }
  for (let i = 0; i < 300; i++) {
    const b = Buffer.from(buf);
    const n = 1 + int(3);
    const at: number[] = [];
    for (let k = 0; k < n; k++) {
      const p = int(b.length);
      b[p] ^= 1 << int(8);
      at.push(p);
    }
    add(`flip@${at.join(',')}`, b);
  }
  const lies = [0, 1, 0x7fffffff, 0xfffffffe, 0xffffffff, buf.length, buf.length * 1000];
  for (let i = 0; i < 250; i++) {
    const b = Buffer.from(buf);
    const e = cds[int(cds.length)];
    const field = [16, 20, 24, 28, 30, 32, 42, 10][int(8)];
    const v = r() < 0.5 ? lies[int(lies.length)] : int(0x10000);
    if (field === 28 || field === 30 || field === 32 || field === 10) b.writeUInt16LE(v & 0xffff, e.at + field);
    else b.writeUInt32LE(v >>> 0, e.at + field);
    add(`cd ${e.name}+${field}=${v}`, b);
  }
  // the end records: counts, directory size and offset, the zip64 fields
  const eocd = buf.lastIndexOf('PK\x05\x06');
  const z64 = buf.lastIndexOf('PK\x06\x06');
  for (let i = 0; i < 80; i++) {
    const b = Buffer.from(buf);
    if (r() < 0.5) b.writeUInt32LE(lies[int(lies.length)] >>> 0, eocd + [8, 10, 12, 16][int(4)]);
    else b.writeBigUInt64LE(BigInt(lies[int(lies.length)]) * BigInt(1 + int(1000)), z64 + [24, 32, 40, 48][int(4)]);
    add(`end record ${i}`, b);
  }
  // inside data.pkl (and the storages), the CRC fixed so the bytes reach the unpickler
  const pkl = cds.find((c) => c.name.endsWith('data.pkl'))!;
  for (let i = 0; i < 300; i++) {
    const b = Buffer.from(buf);
    const target = r() < 0.8 ? pkl : cds[int(cds.length)];
    if (target.size === 0) continue;
    for (let k = 0, n = 1 + int(2); k < n; k++) {
      const p = target.dataStart + int(target.size);
      b[p] = r() < 0.5 ? b[p] ^ (1 << int(8)) : int(256);
    }
    b.writeUInt32LE(crc32([b.subarray(target.dataStart, target.dataStart + target.size)]), target.at + 16);
    add(`data ${target.name} ${i}`, b);
  }
  return out;
}

test('≥ 1,000 mutations of valid .pt files: a CheckpointFormatError with a message or a valid load, each fast', async () => {
  const ours = path.join(dir, 'ours.pt');
  const { tensor } = await import('../../../src/engine/index');
  await linger.save(
    {
      'a.weight': tensor(Float32Array.from([1, 2, 3, 4, 5, 6]), [2, 3]),
      'a.num_batches_tracked': tensor(Int32Array.from([2]), [], 'int32'),
    },
    ours,
  );
  const bases: [string, Buffer][] = [
    ['training.pt', fs.readFileSync(path.join(ROOT, 'test', 'fixtures', 'pt', 'training.pt'))],
    ['views.pt', fs.readFileSync(path.join(ROOT, 'test', 'fixtures', 'pt', 'views.pt'))],
    ['ours.pt', fs.readFileSync(ours)],
  ];
  const cases = bases.flatMap(([n, b], i) => mutations(n, b, 1000 + i));
  assert.ok(cases.length >= 1000, `${cases.length} cases`);
  const file = path.join(dir, 'case.pt');
  let errors = 0;
  let loads = 0;
  const rss0 = process.memoryUsage().rss;
  for (const c of cases) {
    fs.writeFileSync(file, c.bytes);
    const t0 = Date.now();
    try {
      const sd = await linger.load(file);
      for (const t of Object.values(sd)) t.dispose();
      loads++;
    } catch (e) {
      assert.ok(e instanceof CheckpointFormatError, `${c.name}: ${String((e as Error)?.stack ?? e)}`);
      assert.ok(e.problem.length > 5, `${c.name}: an empty message`);
      assert.ok(e.message.startsWith(file), `${c.name}: the message names the file`);
      errors++;
    }
    assert.ok(Date.now() - t0 < 2000, `${c.name}: took ${Date.now() - t0} ms`);
  }
  const grew = process.memoryUsage().rss - rss0;
  assert.ok(grew < 512 * 2 ** 20, `rss grew ${grew} bytes`);
  assert.ok(errors > cases.length * 0.8, `${errors} errors, ${loads} loads`);
  console.log(`${cases.length} mutations: ${errors} clean errors, ${loads} valid loads`);
});
