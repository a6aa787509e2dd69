import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test } from 'node:test';
import fc from 'fast-check';
import { BuildtraceError } from '../src/errors.js';
import { parseNarInfo } from '../src/nix/narinfo.js';
import { verifyFingerprintSig } from '../src/nix/nix-key.js';
import { narCheck, NarMismatch, singleFileNar } from '../src/serve/nar-stream.js';
import { loadOrCreateKey, signedBuildTrace, signedNarInfo } from '../src/serve/signing-key.js';
import { run, tempDir, VERIFY_CLI } from './helpers.js';

/** A NAR of one regular file, as Nix writes it. */
function nar(contents: Buffer, executable = false): Buffer {
  const str = (b: Buffer | string): Buffer => {
    const x = typeof b === 'string' ? Buffer.from(b) : b;
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(x.length));
    return Buffer.concat([len, x, Buffer.alloc((8 - (x.length % 8)) % 8)]);
  };
  return Buffer.concat([
    ...['nix-archive-1', '(', 'type', 'regular'].map(str),
    ...(executable ? [str('executable'), str('')] : []),
    str('contents'),
    str(contents),
    str(')'),
  ]);
}

test('singleFileNar: reads what Nix writes; anything else is its own error, never a crash', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.boolean(), (bytes, x) => {
      assert.deepEqual(singleFileNar(nar(Buffer.from(bytes), x), 't'), Buffer.from(bytes));
    }),
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 100 }), fc.nat(), fc.integer({ min: 0, max: 255 }), (bytes, at, v) => {
      const n = nar(Buffer.from(bytes));
      n[at % n.length] = v;
      try {
        singleFileNar(n, 't');
      } catch (err) {
        assert.ok(err instanceof BuildtraceError, String(err));
      }
    }),
  );
});

async function through(chunks: Buffer[], sha: string, size: number): Promise<{ got: Buffer; err: unknown }> {
  const got: Buffer[] = [];
  let err: unknown;
  await pipeline(
    Readable.from(chunks),
    narCheck(sha, size, 'test'),
    new Writable({
      write(c: Buffer, _e, cb) {
        got.push(c);
        cb();
      },
    }),
  ).catch((e: unknown) => (err = e));
  return { got: Buffer.concat(got), err };
}

test('narCheck: the right bytes pass whole; other bytes of the same size never arrive complete', async () => {
  const body = Buffer.alloc(3 << 20, 7);
  const chunks = [body.subarray(0, 1 << 20), body.subarray(1 << 20, 2 << 20), body.subarray(2 << 20)];
  const sha = createHash('sha256').update(body).digest('hex');
  const ok = await through(chunks, sha, body.length);
  assert.equal(ok.err, undefined);
  assert.ok(ok.got.equals(body));
  const bad = Buffer.from(body);
  bad[5] = 8;
  const r = await through([bad.subarray(0, 1 << 20), bad.subarray(1 << 20, 2 << 20), bad.subarray(2 << 20)], sha, body.length);
  assert.ok(r.err instanceof NarMismatch);
  assert.ok(r.got.length < body.length, 'the last chunk is held back');
  const long = await through([...chunks, Buffer.from('x')], sha, body.length);
  assert.ok(long.err instanceof NarMismatch);
  const short = await through(chunks.slice(0, 2), sha, body.length);
  assert.ok(short.err instanceof NarMismatch);
});

test('the signing key is made once with mode 0600; a looser key file is refused; narinfo signatures verify as Nix checks them', () => {
  const dir = tempDir('serve-key-');
  const k = loadOrCreateKey(dir, 'test-subst-1');
  assert.equal(statSync(join(dir, 'signing-key.sec')).mode & 0o777, 0o600);
  assert.deepEqual(loadOrCreateKey(dir, 'other-name').publicKey.raw, k.publicKey.raw, 'the key is kept across starts');
  const path = '/nix/store/7kf39nh5dgw2airf6njpy8q6rsnyb4kb-b';
  const ref = '/nix/store/00000000000000000000000000000000-a';
  const text = signedNarInfo(k, { storePath: path, url: 'nar/x.nar', narSha256Hex: 'ab'.repeat(32), narSize: 120, references: [ref, path] });
  const ni = parseNarInfo(text);
  assert.equal(ni.compression, 'none');
  const fp = `1;${path};sha256:${text.match(/NarHash: sha256:(\S+)/)?.[1]};120;${ref},${path}`;
  assert.ok(verifyFingerprintSig(k.publicKey, fp, ni.sigs[0] as string));
  chmodSync(join(dir, 'signing-key.sec'), 0o644);
  assert.throws(
    () => loadOrCreateKey(dir),
    (e: unknown) => e instanceof BuildtraceError && e.code === 'KEY_INVALID',
  );
});

test("a build-trace-v2 value (Nix >= 2.35) is signed over the fingerprint bytes of Nix's own test data", () => {
  const k = loadOrCreateKey(tempDir('serve-key-'), 'test-subst-1');
  // NixOS/nix src/libstore-tests/data/realisation/simple-fingerprint.txt (commit 88b09c64fb, LGPL-2.1):
  // the key {drvPath, outputName} and the value without its signatures, compact JSON
  const fingerprint =
    '{"key":{"drvPath":"g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-bar.drv","outputName":"foo"},"value":{"outPath":"g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-foo"}}';
  const body = JSON.parse(signedBuildTrace(k, 'g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-bar.drv', 'foo', '/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-foo')) as {
    outPath: string;
    signatures: { keyName: string; sig: string }[];
  };
  // the value as Nix's unkeyed-with-signature.json has it: outPath a base name, signatures as objects
  assert.deepEqual(Object.keys(body), ['outPath', 'signatures']);
  assert.equal(body.outPath, 'g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-foo');
  assert.equal(body.signatures.length, 1);
  assert.equal(body.signatures[0]?.keyName, 'test-subst-1');
  assert.ok(verifyFingerprintSig(k.publicKey, fingerprint, `test-subst-1:${body.signatures[0]?.sig}`));
  assert.ok(!verifyFingerprintSig(k.publicKey, fingerprint.replace('"foo"}', '"out"}'), `test-subst-1:${body.signatures[0]?.sig}`));
});

test('serve --recheck-seconds: documented in --help; not a whole number >= 0 is a usage error (exit 2) before anything starts', async () => {
  const help = await run(VERIFY_CLI, ['serve', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--recheck-seconds \(default 10\)/);
  const state = tempDir('serve-usage-');
  for (const bad of ['-1', '1.5', 'ten', '']) {
    const r = await run(VERIFY_CLI, [
      'serve',
      '--policy',
      join(state, 'none.json'),
      '--cache',
      `file://${state}`,
      '--state-dir',
      state,
      '--recheck-seconds',
      bad,
    ]);
    assert.equal(r.code, 2, `${bad}: ${r.stderr}`);
    assert.match(r.stderr, /--recheck-seconds .*expected an integer >= 0/);
  }
});
