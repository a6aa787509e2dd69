import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { BuildtraceError } from '../src/errors.js';
import { admitKeys } from '../src/verify/admission.js';
import { loadTrustPolicy } from '../src/verify/trust-policy.js';
import { tempDir } from './helpers.js';

/** A fresh Ed25519 public key in Nix's name:base64 form. */
function nixPublic(name: string): string {
  const { publicKey } = generateKeyPairSync('ed25519');
  const der = publicKey.export({ format: 'der', type: 'spki' });
  return `${name}:${der.subarray(der.length - 32).toString('base64')}`;
}

describe('key lifecycle in the trust policy', () => {
  const dir = tempDir('lifecycle-');
  const A = nixPublic('a');
  const B = nixPublic('b');
  const B2 = nixPublic('b2');
  let n = 0;
  const write = (p: unknown): string => {
    const f = join(dir, `p${n++}.json`);
    writeFileSync(f, JSON.stringify(p));
    return f;
  };
  const refused = (p: unknown, field: RegExp): void => {
    assert.throws(
      () => loadTrustPolicy(write(p)),
      (e: unknown) => e instanceof BuildtraceError && e.code === 'POLICY_INVALID' && field.test(e.message),
    );
  };

  test('a revoked or retired key is never admitted, even by name in the trust tree', async () => {
    const pol = loadTrustPolicy(
      write({
        keys: { A: { publicKey: A }, B: { publicKey: B, status: 'revoked' }, B2: { publicKey: B2, replaces: 'B' } },
        trust: { threshold: 2, of: ['A', 'B', 'B2'] },
      }),
    );
    assert.equal(pol.keys.get('B')?.status, 'revoked');
    assert.equal(pol.keys.get('B2')?.replaces, 'B');
    const adm = await admitKeys(pol, []);
    assert.equal(adm.keyStatus['B']?.admitted, false);
    assert.match(adm.keyStatus['B']?.detail ?? '', /revoked/);
    const fpB = pol.keys.get('B')?.key.fingerprint as string;
    const v = await adm.identityFor(fpB);
    assert.ok('rejected' in v && v.code === 'key-revoked' && v.signer === 'B', JSON.stringify(v));
    const a = await adm.identityFor(pol.keys.get('A')?.key.fingerprint as string);
    assert.ok('identity' in a && a.identity === 'A');

    const ret = loadTrustPolicy(write({ keys: { A: { publicKey: A }, B: { publicKey: B, status: 'retired' } }, trust: { threshold: 1, of: ['A', 'B'] } }));
    const r = await (await admitKeys(ret, [])).identityFor(ret.keys.get('B')?.key.fingerprint as string);
    assert.ok('rejected' in r && r.code === 'key-retired', JSON.stringify(r));
  });

  test('replaces must name a retired or revoked key in keys; cutoff is reserved for log time', () => {
    refused({ keys: { A: { publicKey: A }, B2: { publicKey: B2, replaces: 'B' } }, trust: 'A' }, /keys\.B2\.replaces names "B", which is not in keys/);
    // an active replaced key would let one builder vote twice
    refused({ keys: { B: { publicKey: B }, B2: { publicKey: B2, replaces: 'B' } }, trust: { threshold: 2, of: ['B', 'B2'] } }, /keys\.B\.status must be/);
    refused({ keys: { B: { publicKey: B, replaces: 'B', status: 'retired' } }, trust: 'B' }, /replaces names itself/);
    refused({ keys: { A: { publicKey: A, status: 'gone' } }, trust: 'A' }, /status/);
    refused({ keys: { A: { publicKey: A, cutoff: { log: 'example.org/log', before: '2026-01-01T00:00:00Z' } } }, trust: 'A' }, /keys\.A\.cutoff is reserved/);
  });
});
