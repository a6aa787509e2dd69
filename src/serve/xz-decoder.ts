/**
 * xz decompression inside the process, as a stream: xz-embedded compiled to WebAssembly (the
 * `xz-decompress` package ships it). One `xz -d` process per NAR cost a fork of the whole
 * substituter each time (most of the time spent serving a closure of small paths); this costs
 * an instance of a small compiled module. Each stream has its own instance, so a slow or
 * stalled upstream holds up only its own NAR (the package's own wrapper serialises all streams
 * through one instance). Memory: xz-embedded caps the dictionary at 64 MiB (xz -9's), touched
 * only as far as output is produced, plus two 64 KiB-ish buffers.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Duplex } from 'node:stream';
import { BuildtraceError } from '../errors.js';

/** The part of the WebAssembly global used here (the project's TypeScript libs do not declare it). */
interface Wasm {
  readonly Module: new (bytes: Uint8Array) => object;
  readonly Instance: new (module: object, imports: object) => { readonly exports: unknown };
}
const wasm = (globalThis as unknown as { readonly WebAssembly: Wasm }).WebAssembly;

interface XzExports {
  readonly memory: { readonly buffer: ArrayBuffer };
  create_context(): number;
  destroy_context(ctx: number): void;
  supply_input(ctx: number, n: number): void;
  get_next_output(ctx: number): number;
}

const XZ_OK = 0;
const XZ_STREAM_END = 1;

let compiled: object | undefined;
/** The package's module, compiled once (it is inlined as a data: URL in its script). */
function xzModule(): object {
  if (!compiled) {
    const file = createRequire(import.meta.url).resolve('xz-decompress');
    const m = /data:application\/wasm;base64,([A-Za-z0-9+/=]+)/.exec(readFileSync(file, 'latin1'));
    if (!m) throw new BuildtraceError('INTERNAL', `${file}: no WebAssembly module inside`);
    compiled = new wasm.Module(Buffer.from(m[1] as string, 'base64'));
  }
  return compiled;
}

/**
 * The context's layout (xz-decompress's C side): u32 words from the context pointer: buffer
 * size, then struct xz_buf { in, in_pos, in_size, out, out_pos, out_size }.
 */
const W_BUFSIZE = 0;
const W_IN = 1;
const W_IN_POS = 2;
const W_IN_SIZE = 3;
const W_OUT = 4;
const W_OUT_POS = 5;

/**
 * Instances whose last stream ended are kept for the next one: a fresh instance grows its
 * memory for the stream's dictionary (8 MiB for Nix's xz preset), which costs more than
 * decompressing a small NAR, and dropped instances make the garbage collector work hard. Nix
 * fetches up to 25 NARs at once: keep more than that. Each instance serves one stream at a time.
 */
const idle: XzExports[] = [];
const KEEP_IDLE = 64;
/** An instance whose memory grew past this (a big dictionary) is dropped, not kept: WebAssembly memory never shrinks. */
const KEEP_MAX_BYTES = 16 << 20;
/** All kept instances together: idle memory stays bounded whatever burst of large NARs came before. */
const KEEP_TOTAL_BYTES = 128 << 20;
let idleBytes = 0;

/** Decompresses .xz input as `xz -d` does (concatenated streams in turn); a stream that ends early, or other bytes after one, is `corrupt`'s error. */
export function xzDecoder(what: string, corrupt: (message: string) => Error = (m) => new BuildtraceError('CACHE_ERROR', m)): Duplex {
  let x: XzExports | undefined = idle.pop();
  if (x) idleBytes -= x.memory.buffer.byteLength;
  else x = new wasm.Instance(xzModule(), {}).exports as XzExports;
  const ctx = x.create_context();
  const word = (i: number): number => new Uint32Array((x as XzExports).memory.buffer, ctx, 8)[i] as number;
  const bufSize = word(W_BUFSIZE);
  const inAt = word(W_IN);
  const outAt = word(W_OUT);
  let finished = false;
  // an instance that trapped (an exception out of WebAssembly) is not used again
  let reusable = true;
  const release = (): void => {
    if (!x) return;
    const e = x;
    x = undefined;
    try {
      e.destroy_context(ctx);
    } catch {
      reusable = false;
    }
    const size = e.memory.buffer.byteLength;
    if (reusable && idle.length < KEEP_IDLE && size <= KEEP_MAX_BYTES && idleBytes + size <= KEEP_TOTAL_BYTES) {
      idle.push(e);
      idleBytes += size;
    }
  };
  const fail = (detail: string): Error => corrupt(`${what}: xz: ${detail}`);
  /** One decoder step: its output (copied out of the instance's memory), and whether the stream ended. */
  const step = (out: (b: Buffer) => void): boolean => {
    const e = x as XzExports;
    let r: number;
    try {
      r = e.get_next_output(ctx);
    } catch (err) {
      reusable = false;
      throw err;
    }
    if (r !== XZ_OK && r !== XZ_STREAM_END) throw fail(`corrupt or unsupported data (xz-embedded error ${r})`);
    const n = word(W_OUT_POS);
    if (n > 0) out(Buffer.from(new Uint8Array(e.memory.buffer, outAt, n)));
    new Uint32Array(e.memory.buffer, ctx, 8)[W_OUT_POS] = 0;
    if (r === XZ_STREAM_END) {
      finished = true;
      release();
    }
    return n > 0;
  };
  const needsInput = (): boolean => word(W_IN_POS) === word(W_IN_SIZE);
  const supply = (piece: Uint8Array): void => {
    const e = x as XzExports;
    new Uint8Array(e.memory.buffer, inAt, bufSize).set(piece);
    e.supply_input(ctx, piece.length);
  };
  // Decoding runs only while the reader wants more (one input chunk of zeros can expand to
  // hundreds of MiB); a written chunk is acknowledged once all of it went into the decoder.
  let pending: { chunk: Buffer; at: number; cb: (err?: Error | null) => void } | undefined;
  let ended: ((err?: Error | null) => void) | undefined;
  let wanted = false;
  let idleRounds = 0;
  const d: Duplex = new Duplex({
    readableHighWaterMark: 1 << 20,
    write(chunk: Buffer, _enc, cb) {
      if (finished) return cb(); // after the end of the xz stream: ignored
      pending = { chunk, at: 0, cb };
      pump();
    },
    final(cb) {
      ended = cb;
      pump();
    },
    read() {
      wanted = true;
      pump();
    },
    destroy(err, cb) {
      release();
      cb(err);
    },
  });
  const push = (b: Buffer): void => {
    if (!d.push(b)) wanted = false;
  };
  function pump(): void {
    try {
      while (wanted && !finished) {
        if (needsInput()) {
          if (pending && pending.at < pending.chunk.length) {
            const piece = pending.chunk.subarray(pending.at, pending.at + bufSize);
            pending.at += piece.length;
            supply(piece);
            idleRounds = 0;
          } else if (pending) {
            const { cb } = pending;
            pending = undefined;
            cb();
            return;
          } else if (ended) {
            // what the decoder still holds after the last input; empty rounds mean the stream was cut short
            if (idleRounds >= 3) throw fail('the compressed stream ends before the end of its data');
            supply(new Uint8Array(0));
          } else return;
        }
        idleRounds = step(push) ? 0 : idleRounds + 1;
      }
      if (finished) {
        const cbs = [pending?.cb, ended];
        pending = undefined;
        ended = undefined;
        for (const cb of cbs) cb?.();
        d.push(null);
      }
    } catch (err) {
      release();
      d.destroy(err as Error);
    }
  }
  return d;
}
