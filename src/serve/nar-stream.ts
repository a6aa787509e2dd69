/**
 * A NAR from an upstream cache, as the substituter serves it: decompressed (the bytes sent
 * are the bytes checked), hashed while streaming, and held back by one chunk so that a body
 * whose SHA-256 or size differs from the attested one is cut off before its end: the client
 * never receives a complete wrong NAR. Memory stays at a few chunks whatever the size.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { Duplex, PassThrough, Transform, type TransformCallback } from 'node:stream';
import { createBrotliDecompress, createGunzip } from 'node:zlib';
import { BuildtraceError } from '../errors.js';
import { xzDecoder } from './xz-decoder.js';

/** Why a NAR was cut off; carried by the stream's error. */
export class NarMismatch extends BuildtraceError {
  constructor(message: string) {
    super('NAR_MISMATCH', message);
  }
}

/** A decompressor for a narinfo `Compression:` value; xz in the process (xz-decoder.ts), zstd and bzip2 as the system's own tools. */
export function decompressor(compression: string, what = 'NAR'): Duplex {
  switch (compression) {
    case 'none':
    case '':
      return new PassThrough({ highWaterMark: 1 << 20 });
    case 'gzip':
      return createGunzip();
    case 'br':
      return createBrotliDecompress();
    case 'xz':
      // bytes that do not decode are not the attested NAR: cut off like a wrong hash (NAR_MISMATCH)
      return xzDecoder(what, (m) => new NarMismatch(m));
    case 'zstd':
    case 'bzip2': {
      const cmd = compression === 'zstd' ? ['zstd', '-dcq'] : ['bzip2', '-dcq'];
      return toolStream(cmd[0] as string, cmd.slice(1));
    }
    default:
      throw new BuildtraceError('NARINFO_INVALID', `compression ${JSON.stringify(compression)} is not supported`);
  }
}

/** A child process as a duplex stream: what is written goes to its stdin, its stdout comes out (narCheck judges the bytes). */
function toolStream(cmd: string, args: string[]): Duplex {
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'ignore'] });
  const d = Duplex.from({ writable: child.stdin, readable: child.stdout });
  child.on('error', (err) => d.destroy(new BuildtraceError('CACHE_ERROR', `cannot run ${cmd}: ${err.message}`)));
  d.once('close', () => child.kill('SIGKILL'));
  return d;
}

/**
 * Passes the NAR through while hashing it; more bytes than `narSize` fail at once, and the
 * last chunk is released only when size and SHA-256 are exactly the attested ones.
 */
export function narCheck(narSha256Hex: string, narSize: number, what: string): Transform {
  const h = createHash('sha256');
  let n = 0;
  let held: Buffer | undefined;
  return new Transform({
    highWaterMark: 1 << 20,
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      n += chunk.length;
      if (n > narSize) return cb(new NarMismatch(`${what}: more than the attested ${narSize} bytes`));
      h.update(chunk);
      const prev = held;
      held = chunk;
      cb(null, prev);
    },
    flush(cb: TransformCallback) {
      if (n !== narSize) return cb(new NarMismatch(`${what}: ${n} bytes, the attested NAR has ${narSize}`));
      const got = h.digest('hex');
      if (got !== narSha256Hex) return cb(new NarMismatch(`${what}: NAR sha256 ${got}, attested ${narSha256Hex}`));
      cb(null, held);
    },
  });
}

/** Bounds the compressed bytes read from upstream. */
export function byteCap(max: number, what: string): Transform {
  let n = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      n += chunk.length;
      if (n > max) return cb(new BuildtraceError('LIMIT_EXCEEDED', `${what}: more than ${max} bytes`));
      cb(null, chunk);
    },
  });
}

/** The contents of a NAR that holds one regular file (what a `.drv` is). */
export function singleFileNar(nar: Buffer, what: string): Buffer {
  let at = 0;
  const str = (): Buffer => {
    if (at + 8 > nar.length) throw new BuildtraceError('NARINFO_INVALID', `${what}: truncated NAR`);
    const n = Number(nar.readBigUInt64LE(at));
    at += 8;
    if (n > nar.length - at) throw new BuildtraceError('NARINFO_INVALID', `${what}: truncated NAR`);
    const s = nar.subarray(at, at + n);
    at += n + ((8 - (n % 8)) % 8);
    return s;
  };
  const expect = (t: string): void => {
    const s = str().toString('latin1');
    if (s !== t)
      throw new BuildtraceError(
        'NARINFO_INVALID',
        `${what}: not a NAR of one regular file (found ${JSON.stringify(s.slice(0, 40))}, expected ${JSON.stringify(t)})`,
      );
  };
  for (const t of ['nix-archive-1', '(', 'type', 'regular']) expect(t);
  let tag = str().toString('latin1');
  if (tag === 'executable') {
    expect('');
    tag = str().toString('latin1');
  }
  if (tag !== 'contents') throw new BuildtraceError('NARINFO_INVALID', `${what}: not a NAR of one regular file`);
  const contents = Buffer.from(str());
  expect(')');
  if (at !== nar.length) throw new BuildtraceError('NARINFO_INVALID', `${what}: bytes after the NAR`);
  return contents;
}
