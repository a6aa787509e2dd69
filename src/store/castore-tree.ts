import { constants } from 'node:fs';
import { lstat, open, readdir, readlink } from 'node:fs/promises';
import { blake3 } from '@noble/hashes/blake3.js';
import { BuildtraceError } from '../errors.js';
import { directoryNode, type CastoreChild, type CastoreNode } from '../nix/castore.js';

const CHUNK = 1 << 20;

async function fileDigest(path: Buffer, size: number): Promise<Uint8Array> {
  // O_NOFOLLOW: the lstat said regular file; a swap to a symlink since then fails here
  const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const h = blake3.create();
    const buf = Buffer.allocUnsafe(Math.min(CHUNK, Math.max(size, 1)));
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      h.update(buf.subarray(0, bytesRead));
    }
    return h.digest();
  } finally {
    await fh.close();
  }
}

/**
 * The snix castore node of a store path, from the file system (no NAR): lstat, never
 * following symlinks; regular files are executable when the owner may execute them (as
 * Nix's NAR dump and snix's ingestion decide).
 */
export async function castoreNodeOfPath(path: string | Buffer): Promise<CastoreNode> {
  // Buffer paths: store file names need not be UTF-8
  const p = typeof path === 'string' ? Buffer.from(path) : path;
  const st = await lstat(p);
  if (st.isSymbolicLink()) return { type: 'symlink', target: Uint8Array.from(await readlink(p, { encoding: 'buffer' })) };
  if (st.isFile()) return { type: 'file', digest: await fileDigest(p, st.size), size: BigInt(st.size), executable: (st.mode & 0o100) !== 0 };
  if (!st.isDirectory())
    throw new BuildtraceError('STORE_QUERY_FAILED', `${p.toString()}: not a regular file, directory or symlink`, { subject: p.toString() });
  const names = await readdir(p, { encoding: 'buffer' });
  const children: CastoreChild[] = [];
  for (const n of names) children.push({ name: Uint8Array.from(n), node: await castoreNodeOfPath(Buffer.concat([p, Buffer.from('/'), n])) });
  return directoryNode(children);
}
