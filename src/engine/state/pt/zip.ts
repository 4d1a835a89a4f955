// The stored (uncompressed) zip archives torch.save writes (docs/pt-checkpoints.md): reading from a
// file descriptor through the central directory (torch's local headers carry no sizes), every
// size and offset checked against the file before anything is read, CRC-32 checked; and writing
// stored entries with their data 64-byte aligned, as PyTorch's writer does. No DEFLATE: a
// compressed entry is refused.
import * as fs from 'node:fs';

export class ZipError extends Error {}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(chunks: readonly Uint8Array[], init = 0): number {
  let c = ~init >>> 0;
  for (const b of chunks) for (let i = 0; i < b.length; i++) c = CRC_TABLE[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

export interface ZipEntry {
  name: string;
  /** where the entry's bytes start in the file, and how many */
  dataStart: number;
  size: number;
  crc: number;
}

/** Entries more than any checkpoint has (one per storage). */
export const MAX_ENTRIES = 1_000_000;

function readAt(fd: number, pos: number, len: number): Buffer {
  const b = Buffer.allocUnsafe(len);
  let done = 0;
  while (done < len) {
    const n = fs.readSync(fd, b, done, len - done, pos + done);
    if (n === 0) throw new ZipError(`the file ended at byte ${pos + done} while ${len} bytes at ${pos} were read (it shrank?)`);
    done += n;
  }
  return b;
}

function u64(b: Buffer, at: number, what: string, limit: number): number {
  const v = b.readBigUInt64LE(at);
  if (v > BigInt(limit)) throw new ZipError(`${what} ${v} is past the end of the ${limit}-byte file`);
  return Number(v);
}

/** The central directory of a stored zip in `fd` (`size` bytes), validated. */
export function readZipDirectory(fd: number, size: number): Map<string, ZipEntry> {
  if (size < 22) throw new ZipError(`${size} bytes is too short for a zip archive`);
  const tailLen = Math.min(size, 22 + 65535);
  const tail = readAt(fd, size - tailLen, tailLen);
  let e = -1;
  for (let i = tailLen - 22; i >= 0; i--) {
    if (tail.readUInt32LE(i) === 0x06054b50 && i + 22 + tail.readUInt16LE(i + 20) === tailLen) {
      e = i;
      break;
    }
  }
  if (e < 0) throw new ZipError('no end-of-central-directory record (truncated?)');
  const eocdPos = size - tailLen + e;
  if (tail.readUInt16LE(e + 4) !== 0 || tail.readUInt16LE(e + 6) !== 0) throw new ZipError('a multi-disk zip archive');
  let count = tail.readUInt16LE(e + 10);
  if (tail.readUInt16LE(e + 8) !== count) throw new ZipError('the end record disagrees with itself on the number of entries');
  let cdSize = tail.readUInt32LE(e + 12);
  let cdOffset = tail.readUInt32LE(e + 16);
  let cdEnd = eocdPos;
  // zip64: a locator just before the end record points at the zip64 end record (torch always writes both)
  if (eocdPos >= 20 && readAt(fd, eocdPos - 20, 4).readUInt32LE(0) === 0x07064b50) {
    const loc = readAt(fd, eocdPos - 20, 20);
    const recPos = u64(loc, 8, 'the zip64 end record offset', size - 56);
    const rec = readAt(fd, recPos, 56);
    if (rec.readUInt32LE(0) !== 0x06064b50) throw new ZipError(`no zip64 end record at byte ${recPos}`);
    const c64 = u64(rec, 24, 'the zip64 entry count', MAX_ENTRIES);
    if (u64(rec, 32, 'the entry count', MAX_ENTRIES) !== c64) throw new ZipError('the zip64 end record disagrees on the number of entries');
    count = c64;
    cdSize = u64(rec, 40, 'the central directory size', size);
    cdOffset = u64(rec, 48, 'the central directory offset', size);
    cdEnd = recPos;
  } else if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    throw new ZipError('zip64 sizes without a zip64 end record');
  }
  if (count > MAX_ENTRIES) throw new ZipError(`${count} entries (more than ${MAX_ENTRIES})`);
  if (cdOffset + cdSize > cdEnd)
    throw new ZipError(`the central directory [${cdOffset}, ${cdOffset + cdSize}) runs past its end record at ${cdEnd}`);
  const cd = readAt(fd, cdOffset, cdSize);
  const entries = new Map<string, ZipEntry>();
  const spans: [number, number, string][] = [];
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cd.length || cd.readUInt32LE(p) !== 0x02014b50)
      throw new ZipError(`central directory entry ${i} is missing or corrupt (byte ${cdOffset + p})`);
    const flags = cd.readUInt16LE(p + 8);
    const method = cd.readUInt16LE(p + 10);
    const crc = cd.readUInt32LE(p + 16);
    let csize = cd.readUInt32LE(p + 20);
    let usize = cd.readUInt32LE(p + 24);
    const nl = cd.readUInt16LE(p + 28);
    const el = cd.readUInt16LE(p + 30);
    const cl = cd.readUInt16LE(p + 32);
    let local = cd.readUInt32LE(p + 42);
    if (p + 46 + nl + el + cl > cd.length) throw new ZipError(`central directory entry ${i} runs past the directory`);
    let name: string;
    try {
      name = new TextDecoder('utf-8', { fatal: true }).decode(cd.subarray(p + 46, p + 46 + nl));
    } catch {
      throw new ZipError(`central directory entry ${i}: the name is not UTF-8`);
    }
    // zip64 extra field: the 8-byte values of the fields that are 0xffffffff, in order
    for (let x = p + 46 + nl; x + 4 <= p + 46 + nl + el;) {
      const id = cd.readUInt16LE(x);
      const len = cd.readUInt16LE(x + 2);
      if (x + 4 + len > p + 46 + nl + el) throw new ZipError(`entry '${name}': an extra field runs past its entry`);
      if (id === 1) {
        let q = x + 4;
        const next = (what: string) => {
          if (q + 8 > x + 4 + len) throw new ZipError(`entry '${name}': the zip64 extra field lacks the ${what}`);
          const v = u64(cd, q, `entry '${name}': the ${what}`, size);
          q += 8;
          return v;
        };
        if (usize === 0xffffffff) usize = next('size');
        if (csize === 0xffffffff) csize = next('compressed size');
        if (local === 0xffffffff) local = next('offset');
      }
      x += 4 + len;
    }
    p += 46 + nl + el + cl;
    if (flags & 1) throw new ZipError(`entry '${name}' is encrypted`);
    if (method !== 0) throw new ZipError(`entry '${name}' is compressed (method ${method}): torch.save stores its entries uncompressed`);
    if (csize !== usize) throw new ZipError(`entry '${name}' is stored but its sizes differ (${csize} and ${usize})`);
    if (entries.has(name)) throw new ZipError(`the entry '${name}' appears twice`);
    if (local + 30 > cdOffset) throw new ZipError(`entry '${name}': its local header at ${local} is not before the central directory`);
    const lh = readAt(fd, local, 30);
    if (lh.readUInt32LE(0) !== 0x04034b50) throw new ZipError(`entry '${name}': no local header at byte ${local}`);
    const lnl = lh.readUInt16LE(26);
    const lel = lh.readUInt16LE(28);
    if (lnl !== nl || !readAt(fd, local + 30, Math.min(nl, size - local - 30)).equals(cd.subarray(p - el - cl - nl, p - el - cl)))
      throw new ZipError(`entry '${name}': the local header names another entry`);
    const dataStart = local + 30 + lnl + lel;
    if (dataStart + usize > cdOffset)
      throw new ZipError(`entry '${name}': its ${usize} bytes at ${dataStart} run past the start of the central directory (${cdOffset})`);
    entries.set(name, { name, dataStart, size: usize, crc });
    spans.push([local, dataStart + usize, name]);
  }
  if (p !== cd.length) throw new ZipError(`${cd.length - p} bytes of the central directory belong to no entry`);
  spans.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < spans.length; i++)
    if (spans[i][0] < spans[i - 1][1]) throw new ZipError(`entries '${spans[i - 1][2]}' and '${spans[i][2]}' overlap`);
  return entries;
}

/** An entry's bytes, CRC-32 checked. */
export function readZipEntry(fd: number, e: ZipEntry): Buffer {
  const b = readAt(fd, e.dataStart, e.size);
  const c = crc32([b]);
  if (c !== e.crc)
    throw new ZipError(`entry '${e.name}': CRC-32 ${c.toString(16)} where the directory says ${e.crc.toString(16)} (corrupt)`);
  return b;
}

// ---- writing -----------------------------------------------------------------------------------

const ALIGN = 64;
const MAX32 = 0xffffffff;

/**
 * A stored zip of the given entries as chunks: local header (with an 'FB' padding field so the
 * data is 64-byte aligned, as PyTorch's writer pads), the data, then the central directory, a
 * zip64 end record and locator, and the end record (PyTorch's reader takes them all).
 */
export function zipChunks(entries: readonly { name: string; data: readonly Uint8Array[] }[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  const central: Buffer[] = [];
  let at = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name, 'utf8');
    const size = e.data.reduce((a, b) => a + b.byteLength, 0);
    if (size >= MAX32 || at >= MAX32) throw new Error(`.pt writing: entry '${e.name}' is past 4 GiB (not supported)`);
    const crc = crc32(e.data);
    const pad = (ALIGN - ((at + 30 + name.length + 4) % ALIGN)) % ALIGN;
    const extra = Buffer.alloc(4 + pad, 0x5a);
    extra.writeUInt16LE(0x4246, 0); // 'FB'
    extra.writeUInt16LE(pad, 2);
    const lh = Buffer.alloc(30);
    lh.writeUInt32LE(0x04034b50, 0);
    lh.writeUInt16LE(20, 4);
    lh.writeUInt16LE(0x0800, 6); // names in UTF-8
    lh.writeUInt32LE(crc, 14);
    lh.writeUInt32LE(size, 18);
    lh.writeUInt32LE(size, 22);
    lh.writeUInt16LE(name.length, 26);
    lh.writeUInt16LE(extra.length, 28);
    out.push(lh, name, extra, ...e.data);
    const ch = Buffer.alloc(46);
    ch.writeUInt32LE(0x02014b50, 0);
    ch.writeUInt16LE(20, 4);
    ch.writeUInt16LE(20, 6);
    ch.writeUInt16LE(0x0800, 8);
    ch.writeUInt32LE(crc, 16);
    ch.writeUInt32LE(size, 20);
    ch.writeUInt32LE(size, 24);
    ch.writeUInt16LE(name.length, 28);
    ch.writeUInt32LE(at, 42);
    central.push(ch, name);
    at += 30 + name.length + extra.length + size;
  }
  const cdOffset = at;
  const cdSize = central.reduce((a, b) => a + b.length, 0);
  if (cdOffset + cdSize >= MAX32) throw new Error('.pt writing: the archive is past 4 GiB (not supported)');
  const z64 = Buffer.alloc(56);
  z64.writeUInt32LE(0x06064b50, 0);
  z64.writeBigUInt64LE(44n, 4);
  z64.writeUInt16LE(45, 12);
  z64.writeUInt16LE(45, 14);
  z64.writeBigUInt64LE(BigInt(entries.length), 24);
  z64.writeBigUInt64LE(BigInt(entries.length), 32);
  z64.writeBigUInt64LE(BigInt(cdSize), 40);
  z64.writeBigUInt64LE(BigInt(cdOffset), 48);
  const loc = Buffer.alloc(20);
  loc.writeUInt32LE(0x07064b50, 0);
  loc.writeBigUInt64LE(BigInt(cdOffset + cdSize), 8);
  loc.writeUInt32LE(1, 16);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cdSize, 12);
  end.writeUInt32LE(cdOffset, 16);
  return [...out, ...central, z64, loc, end];
}
