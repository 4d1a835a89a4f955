// Opening a path the user named, without surprises (issue 21): a FIFO blocks `open()` until a
// writer comes, a device can be endless, a directory or a symlink loop fails with an errno that
// reads as "no such file". Every reader lstats the path first, says what it is when it is not a
// regular file (or a link to one), and opens it non-blocking, so nothing it is handed can hang it.
import * as fs from 'node:fs';

/** A path that is not a regular file we can read: `problem` says what it is instead. */
export class NotARegularFileError extends Error {
  constructor(
    readonly file: string,
    readonly problem: string,
  ) {
    super(`${file}: ${problem}`);
    this.name = 'NotARegularFileError';
  }
}

function kindOf(st: fs.Stats): string | undefined {
  if (st.isFile()) return undefined;
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  return 'not a regular file';
}

const ERRNO: Readonly<Record<string, string>> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  ELOOP: 'a symbolic link loop (too many levels of links)',
  ENOTDIR: 'a part of the path is not a directory',
  ENAMETOOLONG: 'the name is too long',
  EISDIR: 'a directory',
};

/** A file-system error as a short phrase ("permission denied"). */
export function ioProblem(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  return (code && ERRNO[code]) ?? code ?? (e as Error).message;
}

/**
 * What is wrong with reading `file` as `what` (a "checkpoint", a "notebook"), or undefined for a
 * regular file or a symbolic link to one. Never opens the path.
 */
export function regularFileProblem(file: string, what = 'file'): string | undefined {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(file);
    if (st.isSymbolicLink()) st = fs.statSync(file); // a loop fails here with ELOOP
  } catch (e) {
    return ioProblem(e);
  }
  const kind = kindOf(st);
  return kind === undefined ? undefined : `${kind === 'not a regular file' ? kind : `is ${kind}`}, not a ${what} file`;
}

/** Throws NotARegularFileError unless `file` is a regular file (or a link to one). */
export function checkRegularFile(file: string, what = 'file'): void {
  const p = regularFileProblem(file, what);
  if (p) throw new NotARegularFileError(file, p);
}

/**
 * Opens a regular file for reading: checked first, then opened non-blocking (a FIFO swapped in
 * between the check and the open cannot block it) and checked again on the open descriptor.
 * Returns the descriptor and the file's size; the caller closes it.
 */
export function openRegularFile(file: string, what = 'file'): { fd: number; size: number } {
  checkRegularFile(file, what);
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0));
  } catch (e) {
    throw new NotARegularFileError(file, ioProblem(e));
  }
  try {
    const st = fs.fstatSync(fd);
    const kind = kindOf(st);
    if (kind !== undefined) throw new NotARegularFileError(file, `is ${kind}, not a ${what} file`);
    return { fd, size: st.size };
  } catch (e) {
    fs.closeSync(fd);
    if (e instanceof NotARegularFileError) throw e;
    throw new NotARegularFileError(file, ioProblem(e));
  }
}

/** The bytes of a regular file (see openRegularFile); every failure is a NotARegularFileError. */
export function readRegularFile(file: string, what = 'file'): Buffer {
  const { fd, size } = openRegularFile(file, what);
  try {
    const chunks: Buffer[] = [];
    let total = 0;
    // read to the end rather than trusting the size: a file may grow while it is read
    for (let buf = Buffer.allocUnsafe(Math.max(1, Math.min(size + 1, 64 * 2 ** 20))); ;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      chunks.push(Buffer.from(buf.subarray(0, n)));
      total += n;
      if (n === buf.length && buf.length < 64 * 2 ** 20) buf = Buffer.allocUnsafe(buf.length * 2);
    }
    return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, total);
  } catch (e) {
    if (e instanceof NotARegularFileError) throw e;
    throw new NotARegularFileError(file, ioProblem(e));
  } finally {
    fs.closeSync(fd);
  }
}
