import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parsePublicKey, parseSecretKey, publicKeyFromRaw } from '../src/nix/nix-key.js';
import { checkBundle, bundleDedupKey } from '../src/trace/bundle.js';
import { checkLautJws, lautKid, parseLautContainer, signLautJws, splitTraceObject } from '../src/trace/laut-jws.js';
import type { JsonValue } from '../src/util/strict-json.js';
import { BundlePool } from '../src/verify/bundle-pool.js';
import { ROOT, run, tempDir, VERIFY_CLI } from './helpers.js';

const VEC = join(ROOT, 'test/vectors/laut');
const TRACES = join(VEC, 'traces');
const files = readdirSync(TRACES).sort();
const pubA = parsePublicKey(readFileSync(join(VEC, 'builderA_key.public'), 'utf8'));
const pubB = parsePublicKey(readFileSync(join(VEC, 'builderB_key.public'), 'utf8'));
const secA = parseSecretKey(readFileSync(join(VEC, 'builderA_key.private'), 'utf8'));
const secB = parseSecretKey(readFileSync(join(VEC, 'builderB_key.private'), 'utf8'));
const keys = [pubA, pubB];

const jwsOf = (f: string): string[] => parseLautContainer(readFileSync(join(TRACES, f), 'utf8'), f) as string[];
const payloadOf = (jws: string): { [k: string]: JsonValue } => JSON.parse(Buffer.from(jws.split('.')[1] as string, 'base64url').toString('utf8')) as { [k: string]: JsonValue };

/** Another character at one position of a base64url part (still base64url). */
function flipAt(jws: string, pos: number): string {
  const c = jws[pos] as string;
  return jws.slice(0, pos) + (c === 'A' ? 'B' : 'A') + jws.slice(pos + 1);
}

describe("laut's JWS traces (real vectors from mschwaig/laut)", () => {
  test('all 314 signatures of the 157 vector files verify under laut\'s two test keys, with laut\'s semantics', () => {
    assert.equal(files.length, 157);
    let n = 0;
    for (const f of files) {
      const sigs = jwsOf(f);
      assert.equal(sigs.length, 2, f);
      const signers = new Set<string>();
      for (const s of sigs) {
        const c = checkBundle(s, keys, { expectedHash: f });
        assert.ok(c.ok, `${f}: ${c.ok ? '' : c.detail}`);
        n++;
        signers.add(c.value.key.name);
        const claim = c.value.statement;
        assert.equal(claim.format, 'laut-jws');
        assert.equal(claim.kind, 'ca');
        assert.equal(claim.inputsListed, false);
        assert.equal(claim.resolvedInputHash, f);
        // out.nix.<o>.hash is "sha256:<nix32 NAR hash>": the claim carries it as hex
        const p = payloadOf(s) as { out: { nix: Record<string, { path: string; hash: string }> } };
        for (const [o, v] of Object.entries(p.out.nix)) {
          const got = claim.outputs.get(o);
          assert.equal(got?.path, v.path);
          assert.match(v.hash, /^sha256:[0-9a-df-np-sv-z]{52}$/);
          assert.match(got?.sha256 ?? '', /^[0-9a-f]{64}$/);
        }
      }
      assert.deepEqual([...signers].sort(), ['builderA', 'builderB'], f);
    }
    assert.equal(n, 314);
  });

  test('trace-verify bundles accepts every vector file and names the count', async () => {
    const r = await run(VERIFY_CLI, ['bundles', ...files.flatMap((f) => ['--file', join(TRACES, f)]), '--key', join(VEC, 'builderA_key.public'), '--key', join(VEC, 'builderB_key.public'), '--json']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const j = JSON.parse(r.stdout) as { verified: boolean; checked: number };
    assert.equal(j.verified, true);
    assert.equal(j.checked, 314);
  });

  test('every signature is rejected with a flipped byte in its header, payload or signature', () => {
    for (const f of files) {
      for (const s of jwsOf(f)) {
        const [h, p] = s.split('.') as [string, string];
        // header: the kid no longer selects (or the JSON breaks); payload and signature: the signature fails
        for (const pos of [Math.floor(h.length / 2), h.length + 1 + Math.floor(p.length / 2), s.length - 10]) {
          const c = checkBundle(flipAt(s, pos), keys, { expectedHash: f });
          assert.equal(c.ok, false, `${f} at ${pos}`);
        }
        const sigFlip = checkBundle(flipAt(s, s.length - 10), keys, { expectedHash: f });
        assert.equal(sigFlip.ok ? '' : sigFlip.reason, 'signature-invalid');
        const payFlip = checkBundle(flipAt(s, h.length + 1 + Math.floor(p.length / 2)), keys, { expectedHash: f });
        assert.ok(!payFlip.ok && ['signature-invalid', 'malformed'].includes(payFlip.reason), f);
      }
    }
  });

  test('every signature is rejected under a wrong key (other builder, same name, fresh key)', () => {
    const raw = generateKeyPairSync('ed25519').publicKey.export({ format: 'der', type: 'spki' }).subarray(12);
    for (const f of files) {
      for (const s of jwsOf(f)) {
        const name = JSON.parse(Buffer.from(s.split('.')[0] as string, 'base64url').toString()).kid.split(':')[0] as string;
        const other = name === 'builderA' ? pubB : pubA;
        const impostor = publicKeyFromRaw(name, raw);
        for (const k of [other, impostor]) {
          const c = checkBundle(s, [k], { expectedHash: f });
          assert.equal(c.ok ? '' : c.reason, 'key-not-admitted', `${f} under ${k.name}`);
        }
      }
    }
  });

  test('a kid only selects: a key whose fingerprint matches the kid but does not verify is signature-invalid', () => {
    // re-sign builderA's payload with builderB's key but keep builderA's header: the kid selects A, A does not verify
    const s = jwsOf(files[0] as string)[0] as string;
    const [h, p] = s.split('.') as [string, string];
    const forged = signLautJws(payloadOf(s), secB);
    const mixed = `${h}.${p}.${forged.split('.')[2] as string}`;
    const c = checkLautJws(mixed, keys);
    assert.equal(c.ok ? '' : c.reason, 'signature-invalid');
  });

  test('a signature over a non-matching rdrv_aterm_ca is rejected (preimage and object name)', () => {
    for (const f of files.slice(0, 40)) {
      for (const [i, s] of jwsOf(f).entries()) {
        const key = i === 0 ? secA : secB;
        const legacy = JSON.parse(Buffer.from(s.split('.')[0] as string, 'base64url').toString()).typ === 'JWT';
        const p = payloadOf(s) as { in: { rdrv_aterm_ca: string; debug?: unknown } };
        const other = (files[(files.indexOf(f) + 1) % files.length] as string);
        // signed by laut's own key in laut's format, but about another rdrv than its ATerm preimage
        const lie = signLautJws({ ...p, in: { ...p.in, rdrv_aterm_ca: other } } as unknown as JsonValue, key, legacy);
        const c1 = checkLautJws(lie, keys);
        assert.equal(c1.ok ? '' : c1.reason, 'malformed', `${f}: preimage must hash to rdrv_aterm_ca`);
        // the same without the debug preimage: only the object name / the verifier's rdrv can catch it
        const bare = signLautJws({ ...p, in: { rdrv_aterm_ca: other } } as unknown as JsonValue, key, legacy);
        assert.equal(checkLautJws(bare, keys).ok, true, 'self-consistent without a preimage');
        const c2 = checkBundle(bare, keys, { expectedHash: f });
        assert.equal(c2.ok ? '' : c2.reason, 'replayed');
      }
    }
  });

  test("the current header generation (no typ, payload without rdrv_json and debug) verifies", () => {
    const s = jwsOf(files[3] as string)[1] as string;
    const p = payloadOf(s) as { in: { rdrv_aterm_ca: string }; out: JsonValue; builder: JsonValue };
    const cur = signLautJws({ in: { rdrv_aterm_ca: p.in.rdrv_aterm_ca }, out: p.out, builder: p.builder }, secB);
    const header = JSON.parse(Buffer.from(cur.split('.')[0] as string, 'base64url').toString()) as Record<string, string>;
    assert.deepEqual(Object.keys(header), ['alg', 'crv', 'detachHash', 'kid', 'type', 'v']);
    assert.equal(header['kid'], lautKid(pubB));
    const c = checkBundle(cur, keys, { expectedHash: files[3] as string });
    assert.ok(c.ok && c.value.key.name === 'builderB' && c.value.statement.outputs.size > 0);
  });

  test('malformed JWS and containers are rejected with a reason, never a crash', () => {
    const s = jwsOf(files[0] as string)[0] as string;
    const [h, p, g] = s.split('.') as [string, string, string];
    const badHeader = (o: object): string => `${Buffer.from(JSON.stringify(o)).toString('base64url')}.${p}.${g}`;
    for (const u of [
      badHeader({ alg: 'none', kid: lautKid(pubA) }),
      badHeader({ alg: 'EdDSA', crv: 'Ed448', kid: lautKid(pubA) }),
      badHeader({ alg: 'EdDSA', kid: 'builderA' }),
      `${h}.${p}.${g}=`,
      `${h}.${p}.${g.slice(0, 40)}`,
      `${h}..${g}`,
    ]) {
      const c = checkBundle(u, keys);
      assert.equal(c.ok, false, u.slice(0, 60));
    }
    assert.equal(parseLautContainer('{"mediaType":"x"}'), undefined);
    assert.throws(() => parseLautContainer(JSON.stringify({ signatures: new Array(5000).fill('a.b.c') })), /more than the limit/);
  });

  test('a container and appended JSON Lines in one object yield every unit; dedup keys ignore unsigned changes', () => {
    const f = files[0] as string;
    const text = readFileSync(join(TRACES, f), 'utf8');
    const units = splitTraceObject(`${text.trim()}\n{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}\n`);
    assert.equal(units.length, 3);
    assert.equal(splitTraceObject(text).length, 2);
    const [a, b] = jwsOf(f) as [string, string];
    assert.notEqual(bundleDedupKey(a), bundleDedupKey(b));
    assert.equal(bundleDedupKey(a), bundleDedupKey(a));
  });

  test('the worker pool checks laut JWS like checkBundle does', async () => {
    const pool = new BundlePool(keys, 1);
    try {
      const f = files[5] as string;
      const [a, b] = jwsOf(f) as [string, string];
      const [ca, cb, bad] = await Promise.all([pool.check(a), pool.check(b), pool.check(flipAt(a, a.length - 5))]);
      assert.ok(ca.ok && cb.ok && ca.value.statement.format === 'laut-jws');
      assert.deepEqual([ca.value.key.name, cb.value.key.name].sort(), ['builderA', 'builderB']);
      assert.equal(bad.ok, false);
    } finally {
      await pool.close();
    }
  });

  test('trace-verify bundles rejects a flipped byte, a wrong key and a renamed object (exit 1)', async () => {
    const dir = tempDir('laut-cli-');
    const f = files[7] as string;
    const text = readFileSync(join(TRACES, f), 'utf8');
    const [a] = jwsOf(f) as [string];
    const flipped = join(dir, f);
    writeFileSync(flipped, JSON.stringify({ signatures: [flipAt(a, a.length - 10)] }));
    const r1 = await run(VERIFY_CLI, ['bundles', '--file', flipped, '--key', join(VEC, 'builderA_key.public')]);
    assert.equal(r1.code, 1);
    assert.match(r1.stdout, /signature-invalid/);
    const r2 = await run(VERIFY_CLI, ['bundles', '--file', join(TRACES, f), '--key', join(VEC, 'builderB_key.public')]);
    assert.equal(r2.code, 1);
    assert.match(r2.stdout, /1 of 2 bundles verify/);
    const renamed = join(dir, files[8] as string);
    writeFileSync(renamed, text);
    const r3 = await run(VERIFY_CLI, ['bundles', '--file', renamed, '--key', join(VEC, 'builderA_key.public'), '--key', join(VEC, 'builderB_key.public')]);
    assert.equal(r3.code, 1);
    assert.match(r3.stdout, /replayed/);
  });
});
