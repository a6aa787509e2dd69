import { createHash, type Hash } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, open, readdir, readlink } from 'node:fs/promises';
import { BuildtraceError } from '../errors.js';

/**
 * Nix's archive (NAR) serialisation of a store path, hashed as it is written, from the file
 * system: lstat, never following symlinks, regular files opened O_NOFOLLOW, executable when
 * the owner may execute (as `nix-store --dump` decides). The top-level files the caller names
 * are kept in memory, so the bytes it uses are the very bytes whose NAR hash it compares.
 */
const CHUNK = 1 << 20;

function str(h: Hash, s: string | Uint8Array): void {
  const b = typeof s === 'string' ? Buffer.from(s) : s;
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(b.length));
  h.update(len);
  h.update(b);
  const pad = (8 - (b.length % 8)) % 8;
  if (pad > 0) h.update(Buffer.alloc(pad));
}

async function regular(h: Hash, path: Buffer, size: number, keep: boolean): Promise<Buffer | undefined> {
  const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const st = await fh.stat();
    if (!st.isFile() || st.size !== size)
      throw new BuildtraceError('STORE_QUERY_FAILED', `${path.toString()}: changed while it was read`, { subject: path.toString() });
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(size));
    h.update(len);
    const kept = keep ? Buffer.alloc(size) : undefined;
    const buf = Buffer.allocUnsafe(Math.min(CHUNK, Math.max(size, 1)));
    let at = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      if (at + bytesRead > size) throw new BuildtraceError('STORE_QUERY_FAILED', `${path.toString()}: grew while it was read`, { subject: path.toString() });
      const chunk = buf.subarray(0, bytesRead);
      h.update(chunk);
      kept?.set(chunk, at);
      at += bytesRead;
    }
    if (at !== size) throw new BuildtraceError('STORE_QUERY_FAILED', `${path.toString()}: shrank while it was read`, { subject: path.toString() });
    const pad = (8 - (size % 8)) % 8;
    if (pad > 0) h.update(Buffer.alloc(pad));
    return kept;
  } finally {
    await fh.close();
  }
}

async function node(h: Hash, path: Buffer, keep: ReadonlySet<string> | undefined, kept: Map<string, Buffer>): Promise<void> {
  const st = await lstat(path);
  str(h, '(');
  str(h, 'type');
  if (st.isSymbolicLink()) {
    str(h, 'symlink');
    str(h, 'target');
    str(h, await readlink(path, { encoding: 'buffer' }));
  } else if (st.isFile()) {
    str(h, 'regular');
    if ((st.mode & 0o100) !== 0) {
      str(h, 'executable');
      str(h, '');
    }
    str(h, 'contents');
    await regular(h, path, st.size, false);
  } else if (st.isDirectory()) {
    str(h, 'directory');
    const names = (await readdir(path, { encoding: 'buffer' })).sort(Buffer.compare);
    for (const n of names) {
      str(h, 'entry');
      str(h, '(');
      str(h, 'name');
      str(h, n);
      str(h, 'node');
      const child = Buffer.concat([path, Buffer.from('/'), n]);
      const name = n.toString('latin1');
      const cst = keep?.has(name) ? await lstat(child) : undefined;
      if (cst?.isFile()) {
        // a kept top-level file: the same NAR node, its bytes retained
        str(h, '(');
        str(h, 'type');
        str(h, 'regular');
        if ((cst.mode & 0o100) !== 0) {
          str(h, 'executable');
          str(h, '');
        }
        str(h, 'contents');
        kept.set(name, (await regular(h, child, cst.size, true)) as Buffer);
        str(h, ')');
      } else await node(h, child, undefined, kept);
      str(h, ')');
    }
  } else throw new BuildtraceError('STORE_QUERY_FAILED', `${path.toString()}: not a regular file, directory or symlink`, { subject: path.toString() });
  str(h, ')');
}

/** The NAR SHA-256 (hex) of `path`, and the bytes of the named regular files directly inside it. */
export async function dumpPath(path: string, keep: readonly string[]): Promise<{ narSha256: string; files: ReadonlyMap<string, Buffer> }> {
  const h = createHash('sha256');
  str(h, 'nix-archive-1');
  const kept = new Map<string, Buffer>();
  try {
    await node(h, Buffer.from(path), new Set(keep), kept);
  } catch (err) {
    if (err instanceof BuildtraceError) throw err;
    throw new BuildtraceError('STORE_QUERY_FAILED', `cannot read ${path}: ${(err as Error).message}`, { subject: path, cause: err });
  }
  return { narSha256: h.digest('hex'), files: kept };
}
