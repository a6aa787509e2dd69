// ci: nix (runs on every Nix: the host and the trixie and sid chroots; see scripts/run-tests.sh)
import assert from 'node:assert/strict';
import { createHash, createPublicKey, verify } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import fc from 'fast-check';
import { ed25519 } from '@noble/curves/ed25519.js';
import { BuildtraceError } from '../src/errors.js';
import { weakPublicKey } from '../src/nix/ed25519.js';
import { parseSecretKey, publicKeyFromRaw } from '../src/nix/nix-key.js';
import { loadTrustPolicy } from '../src/verify/trust-policy.js';
import { ROOT, nixKeyPair, tempDir } from './helpers.js';
import type { VectorCase } from './ed25519-worker.js';

const VEC = join(ROOT, 'test/vectors/ed25519-speccheck');
const speccheck = (JSON.parse(readFileSync(join(VEC, 'cases.json'), 'utf8')) as { message: string; pub_key: string; signature: string }[]).map(
  (c): VectorCase => ({ a: c.pub_key, m: c.message, sig: c.signature, ph: false }),
);
// results.md, row LibSodium: only case 3 verifies (SOURCE.md)
const LIBSODIUM_ROW = speccheck.map((_, i) => i === 3);

const L = 2n ** 252n + 27742317777372353535851937790883648493n;
const le = (b: Uint8Array): bigint => [...b].reverse().reduce((n, x) => (n << 8n) | BigInt(x), 0n);
const DOM2_PH = Buffer.concat([Buffer.from('SigEd25519 no Ed25519 collisions', 'ascii'), Buffer.from([1, 0])]);
const ZERO_KEY = Buffer.alloc(32);
const IDENTITY = Buffer.concat([Buffer.from([1]), Buffer.alloc(31)]);

/**
 * A forgery for the all-zero public key (a point of order 4): R = identity, S = 0 verifies
 * under the cofactorless equation whenever k = H(..) mod L is a multiple of 4, i.e. for about
 * one message in four: no secret needed.
 */
function forgeForZeroKey(ph: boolean): VectorCase {
  for (let i = 0; ; i++) {
    const m = Buffer.from(`forged statement ${i}`);
    const h = ph
      ? createHash('sha512').update(DOM2_PH).update(IDENTITY).update(ZERO_KEY).update(createHash('sha512').update(m).digest()).digest()
      : createHash('sha512').update(IDENTITY).update(ZERO_KEY).update(m).digest();
    if ((le(h) % L) % 4n === 0n)
      return { a: ZERO_KEY.toString('hex'), m: m.toString('hex'), sig: Buffer.concat([IDENTITY, Buffer.alloc(32)]).toString('hex'), ph };
  }
}

function inThread(cases: readonly VectorCase[], noSodium: boolean): Promise<{ backend: string; results: boolean[] }> {
  const env = { ...process.env };
  if (noSodium) env['BUILDTRACE_NO_SODIUM'] = '1';
  else delete env['BUILDTRACE_NO_SODIUM'];
  const w = new Worker(new URL('./ed25519-worker.js', import.meta.url), { workerData: { cases }, env });
  return new Promise((resolve, reject) => {
    w.once('message', (m: { backend: string; results: boolean[] }) => {
      void w.terminate();
      resolve(m);
    });
    w.once('error', reject);
  });
}

describe('one Ed25519 rule for every backend (#17 class 5)', () => {
  test('"Taming the many EdDSAs" vectors: libsodium, OpenSSL inline and in the libuv pool all give the libsodium row', async (t) => {
    // the threat: OpenSSL alone accepts cases 0, 1, 2 (small-order A or R) and 11 (non-canonical A)
    const SPKI = Buffer.from('302a300506032b6570032100', 'hex');
    const openssl = speccheck.map((c) => {
      try {
        const key = createPublicKey({ key: Buffer.concat([SPKI, Buffer.from(c.a, 'hex')]), format: 'der', type: 'spki' });
        return verify(null, Buffer.from(c.m, 'hex'), key, Buffer.from(c.sig, 'hex'));
      } catch {
        return false;
      }
    });
    // which row plain OpenSSL gives depends on its version: Node 20's accepts 0, 1, 2, 3, 11;
    // Node 24's (OpenSSL 3.5) already refuses small-order and non-canonical keys. Our rule must
    // not depend on which one is linked, so only these two rows are expected of it.
    const opensslRow = openssl.flatMap((v, i) => (v ? [i] : []));
    assert.ok([JSON.stringify([0, 1, 2, 3, 11]), JSON.stringify([3])].includes(JSON.stringify(opensslRow)), `plain OpenSSL: ${JSON.stringify(opensslRow)}`);
    t.diagnostic(`plain OpenSSL ${process.versions.openssl} accepts cases ${JSON.stringify(opensslRow)}`);
    const withSodium = await inThread(speccheck, false);
    const without = await inThread(speccheck, true);
    assert.equal(without.backend, 'openssl');
    assert.deepEqual(without.results, LIBSODIUM_ROW);
    // sodium-native is an optional dependency: where it is installed, it must agree too
    assert.deepEqual(withSodium.results, LIBSODIUM_ROW, withSodium.backend);
  });

  test('the all-zero key: a forgery older OpenSSL accepts is refused by the rule, pure and Ed25519ph, on every backend', async (t) => {
    const pure = forgeForZeroKey(false);
    const ph = forgeForZeroKey(true);
    const key = createPublicKey({ key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), ZERO_KEY]), format: 'der', type: 'spki' });
    // the forgery is real where plain OpenSSL accepts it (OpenSSL before 3.5, as in Node 20); newer OpenSSL refuses it itself
    const plain = verify(null, Buffer.from(pure.m, 'hex'), key, Buffer.from(pure.sig, 'hex'));
    t.diagnostic(`plain OpenSSL ${process.versions.openssl} ${plain ? 'accepts' : 'refuses'} the all-zero-key forgery`);
    const [major = 0, minor = 0] = (process.versions.openssl ?? '').split('.').map(Number);
    if (major < 3 || (major === 3 && minor < 5)) assert.ok(plain, 'the forgery is real: plain OpenSSL before 3.5 accepts it');
    for (const noSodium of [false, true]) {
      const r = await inThread([pure, ph], noSodium);
      assert.deepEqual(r.results, [false, false], `${r.backend}`);
    }
  });

  test('weak public keys are refused where keys are admitted: policy load (field named) and raw keys (TEE admission)', async () => {
    const dir = tempDir('ed25519-');
    const good = await nixKeyPair(dir, 'good-1');
    assert.equal(weakPublicKey(parseSecretKey(readFileSync(good.secretFile, 'utf8')).publicKey.raw), undefined);
    const p = 2n ** 255n - 19n;
    const enc = (n: bigint, sign = false): Buffer => {
      const b = Buffer.alloc(32);
      for (let i = 0; i < 32; i++) b[i] = Number((n >> BigInt(8 * i)) & 0xffn);
      if (sign) b[31] = (b[31] as number) | 0x80;
      return b;
    };
    const weak: [string, Buffer, RegExp][] = [
      ['all zero (order 4)', ZERO_KEY, /small order/],
      ['identity', IDENTITY, /small order/],
      ['identity, sign bit set', enc(1n, true), /small order/],
      ['p - 1 (order 2)', enc(p - 1n), /small order/],
      ['y = p + 2 (non-canonical)', enc(p + 2n), /not a canonical encoding/],
      ['order 8', Buffer.from('26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85', 'hex'), /small order/],
      ['y = 2 (not on the curve)', enc(2n), /not a point of the curve/],
    ];
    for (const [what, raw, why] of weak) {
      assert.match(weakPublicKey(raw) ?? 'accepted', why, what);
      assert.throws(
        () => publicKeyFromRaw('tee', raw),
        (e: unknown) => e instanceof BuildtraceError && e.code === 'KEY_INVALID',
        what,
      );
      const f = join(dir, `policy-${what.replace(/\W+/g, '-')}.json`);
      writeFileSync(
        f,
        JSON.stringify({ keys: { good: { publicKey: good.publicKey }, weak: { publicKey: `weak-1:${raw.toString('base64')}` } }, trust: 'good' }),
      );
      assert.throws(
        () => loadTrustPolicy(f),
        (e: unknown) => e instanceof BuildtraceError && /keys\.weak\.publicKey/.test(e.message) && why.test(e.message),
        what,
      );
    }
  });
  test('weakPublicKey agrees with @noble/curves on random encodings (strict decoding, small order)', () => {
    const noble = (raw: Uint8Array): boolean => {
      try {
        return !ed25519.Point.fromBytes(raw, false).isSmallOrder();
      } catch {
        return false;
      }
    };
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (raw) => (weakPublicKey(raw) === undefined) === noble(raw)),
      { numRuns: 2000 },
    );
  });
});
