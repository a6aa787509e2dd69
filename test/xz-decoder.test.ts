import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test } from 'node:test';
import fc from 'fast-check';
import { BuildtraceError } from '../src/errors.js';
import { decompressor, NarMismatch } from '../src/serve/nar-stream.js';
import { xzDecoder } from '../src/serve/xz-decoder.js';

// The substituter's xz decoder (xz-embedded as WebAssembly) against the system's xz, which made the input.
const xz = (data: Buffer, ...args: string[]): Buffer => execFileSync('xz', ['-zc', ...args], { input: data, maxBuffer: 1 << 28 });

/** Feeds `input` in chunks of `sizes` (cycled) and collects what comes out, or the error. */
async function decode(input: Buffer, sizes: number[] = [65536]): Promise<{ out: Buffer; err?: unknown }> {
  const chunks: Buffer[] = [];
  for (let at = 0, i = 0; at < input.length; i++) {
    const n = Math.max(1, sizes[i % sizes.length] as number);
    chunks.push(input.subarray(at, at + n));
    at += n;
  }
  const got: Buffer[] = [];
  try {
    await pipeline(
      Readable.from(chunks),
      xzDecoder('test'),
      new Writable({
        write(c: Buffer, _e, cb) {
          got.push(c);
          cb();
        },
      }),
    );
    return { out: Buffer.concat(got) };
  } catch (err) {
    return { out: Buffer.concat(got), err };
  }
}

test('xz decoder: gives what xz compressed, whatever the chunking and preset', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.uint8Array({ maxLength: 5000 }),
      fc.array(fc.integer({ min: 1, max: 700 }), { minLength: 1, maxLength: 5 }),
      fc.constantFrom('-0', '-6', '-9e'),
      async (data, sizes, preset) => {
        const r = await decode(xz(Buffer.from(data), preset), sizes);
        assert.equal(r.err, undefined);
        assert.deepEqual(r.out, Buffer.from(data));
      },
    ),
    { numRuns: 60 },
  );
  // repetitive data past one output buffer, and incompressible data past one input buffer
  for (const data of [Buffer.alloc(3 << 20, 7), randomBytes(300_000)]) {
    const r = await decode(xz(data), [4096, 100_000, 1]);
    assert.equal(r.err, undefined);
    assert.equal(createHash('sha256').update(r.out).digest('hex'), createHash('sha256').update(data).digest('hex'));
  }
});

test('xz decoder: a stream cut short, corrupt or followed by other bytes is an error (never a short success)', async () => {
  const data = randomBytes(20_000);
  const c = xz(data);
  for (const cut of [1, 12, c.length >> 1, c.length - 1]) {
    const r = await decode(c.subarray(0, cut));
    assert.ok(r.err instanceof BuildtraceError, `cut at ${cut}: ${String(r.err)}`);
    assert.equal(r.err.code, 'CACHE_ERROR');
  }
  const bad = Buffer.from(c);
  bad[c.length >> 1] = (bad[c.length >> 1] as number) ^ 0xff;
  const r = await decode(bad);
  assert.ok(r.err instanceof BuildtraceError, String(r.err));
  assert.match(r.err.message, /xz: corrupt/);
  // as xz -d: concatenated streams are one output, anything else after a stream is an error
  const two = await decode(Buffer.concat([c, xz(Buffer.from('more'))]));
  assert.equal(two.err, undefined);
  assert.deepEqual(two.out, Buffer.concat([data, Buffer.from('more')]));
  const after = await decode(Buffer.concat([c, Buffer.from('trailing')]));
  assert.ok(after.err instanceof BuildtraceError, String(after.err));
  const notXz = await decode(Buffer.from('this is not an xz stream at all'));
  assert.ok(notXz.err instanceof BuildtraceError);
});

test('xz decoder: decodes only as fast as it is read (a small input of zeros does not fill memory), and a stalled stream holds up no other', async () => {
  // 256 MiB of zeros in ~40 KiB: written at once, nothing read
  const bomb = xz(Buffer.alloc(256 << 20));
  const d = xzDecoder('bomb');
  d.write(bomb);
  await new Promise((r) => setTimeout(r, 200));
  assert.ok(d.readableLength <= 2 << 20, `${d.readableLength} bytes decoded ahead of the reader`);
  // meanwhile another stream decodes to its end
  const other = randomBytes(50_000);
  const r = await decode(xz(other));
  assert.deepEqual(r.out, other);
  // the stalled one still gives everything once read
  d.end();
  let n = 0;
  const h = createHash('sha256');
  for await (const c of d as AsyncIterable<Buffer>) {
    n += c.length;
    h.update(c);
  }
  assert.equal(n, 256 << 20);
  assert.equal(
    h.digest('hex'),
    createHash('sha256')
      .update(Buffer.alloc(256 << 20))
      .digest('hex'),
  );
});

test('decompressor: xz goes through the in-process decoder; what does not decode is a NAR mismatch', async () => {
  const data = randomBytes(1000);
  const got: Buffer[] = [];
  await pipeline(Readable.from([xz(data)]), decompressor('xz', 'test'), async (src: AsyncIterable<Buffer>) => {
    for await (const c of src) got.push(c);
  });
  assert.deepEqual(Buffer.concat(got), data);
  // through decompressor, bytes that do not decode are a NAR mismatch (the server cuts the NAR off and counts it)
  const cut = xz(data).subarray(0, 100);
  await assert.rejects(
    pipeline(Readable.from([cut]), decompressor('xz', 'test'), async (src: AsyncIterable<Buffer>) => {
      for await (const _ of src);
    }),
    (err: unknown) => err instanceof NarMismatch && err.code === 'NAR_MISMATCH',
  );
});
