import { closeSync, constants, fstatSync, openSync, readFileSync, readSync, type Stats } from 'node:fs';
import { BuildtraceError, type ErrorCode } from '../errors.js';

/** Reads a file the user named; a failure says which file, what it was for, and why. */
export function readInput(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new BuildtraceError('FILE_UNREADABLE', `cannot read ${what} ${file}: ${code}`, { subject: file, cause: err });
  }
}

export function readTextInput(file: string, what: string): string {
  return readInput(file, what).toString('utf8');
}

interface RegularFileOptions {
  /** Refuse anything larger, before reading a byte. */
  readonly maxBytes: number;
  /** Refuse a symlink (O_NOFOLLOW) instead of reading its target. */
  readonly noFollow: boolean;
  /** The error code for "not a regular file" and "too large" (the caller's classification). */
  readonly invalidCode: ErrorCode;
  /** The error code for a file that does not exist (default FILE_UNREADABLE). */
  readonly missingCode?: ErrorCode;
  /** Checks on the open file's status (permissions), before reading. */
  readonly check?: (st: Stats) => void;
}

/**
 * Reads a file that must be a regular file of bounded size, without ever blocking:
 * O_NONBLOCK so a FIFO's open returns at once, fstat on the open descriptor (no race
 * with a rename), and the size checked before reading, so /dev/zero or a FIFO under a
 * trusted name is refused instead of read for ever.
 */
export function readRegularFile(file: string, what: string, opts: RegularFileOptions): Buffer {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY | (opts.noFollow ? constants.O_NOFOLLOW : 0));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    if (code === 'ENOENT') throw new BuildtraceError(opts.missingCode ?? 'FILE_UNREADABLE', `${what} ${file} does not exist`, { subject: file, cause: err });
    if (code === 'ELOOP' && opts.noFollow) throw new BuildtraceError(opts.invalidCode, `${what} ${file} is a symlink`, { subject: file, cause: err });
    throw new BuildtraceError('FILE_UNREADABLE', `cannot read ${what} ${file}: ${code}`, { subject: file, cause: err });
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new BuildtraceError(opts.invalidCode, `${what} ${file} is not a regular file (${fileType(st)})`, { subject: file });
    if (st.size > opts.maxBytes)
      throw new BuildtraceError(opts.invalidCode, `${what} ${file} has ${st.size} bytes, more than the ${opts.maxBytes} allowed`, { subject: file });
    opts.check?.(st);
    // one byte more than fstat said: a file that grew since is refused rather than cut
    const buf = Buffer.allocUnsafe(st.size + 1); // only the bytes read are returned
    let n = 0;
    for (;;) {
      const got = readSync(fd, buf, n, buf.length - n, n);
      if (got === 0) break;
      n += got;
      if (n === buf.length) throw new BuildtraceError(opts.invalidCode, `${what} ${file} grew while being read`, { subject: file });
    }
    return buf.subarray(0, n);
  } catch (err) {
    if (err instanceof BuildtraceError) throw err;
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new BuildtraceError('FILE_UNREADABLE', `cannot read ${what} ${file}: ${code}`, { subject: file, cause: err });
  } finally {
    closeSync(fd);
  }
}

function fileType(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a file';
}
