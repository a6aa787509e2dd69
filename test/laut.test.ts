// ci: nix (runs on every Nix: the host and the trixie and sid chroots; see scripts/run-tests.sh)
import assert from 'node:assert/strict';
import { createHash, createPublicKey, generateKeyPairSync, verify as nodeVerify } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { ed25519 } from '@noble/curves/ed25519.js';
import { nix32Encode } from '../src/nix/nix32.js';
import { castoreFromNar } from './castore-nar.js';
import { parsePublicKey, parseSecretKey, publicKeyFromRaw } from '../src/nix/nix-key.js';
import { checkBundle, createBundle } from '../src/trace/bundle.js';
import { checkLautJws, lautKid, parseLautContainer, signLautJws, splitTraceObject } from '../src/trace/laut-jws.js';
import type { JsonValue } from '../src/util/strict-json.js';
import { BundlePool } from '../src/verify/bundle-pool.js';
import { FIXTURES, must, nixBuildWithHook, nixEnv, ROOT, run, salt, startDaemon, tempDir, VERIFY_CLI, type DaemonHandle } from './helpers.js';

const VEC = join(ROOT, 'test/vectors/laut');
const TRACES = join(VEC, 'traces');
const files = readdirSync(TRACES).sort();
const pubA = parsePublicKey(readFileSync(join(VEC, 'builderA_key.public'), 'utf8'));
const pubB = parsePublicKey(readFileSync(join(VEC, 'builderB_key.public'), 'utf8'));
const secA = parseSecretKey(readFileSync(join(VEC, 'builderA_key.private'), 'utf8'));
const secB = parseSecretKey(readFileSync(join(VEC, 'builderB_key.private'), 'utf8'));
const keys = [pubA, pubB];

const jwsOf = (f: string): string[] => parseLautContainer(readFileSync(join(TRACES, f), 'utf8'), f) as string[];
const payloadOf = (jws: string): { [k: string]: JsonValue } =>
  JSON.parse(Buffer.from(jws.split('.')[1] as string, 'base64url').toString('utf8')) as { [k: string]: JsonValue };

/** Another character at one position of a base64url part (still base64url). */
function flipAt(jws: string, pos: number): string {
  const c = jws[pos] as string;
  return jws.slice(0, pos) + (c === 'A' ? 'B' : 'A') + jws.slice(pos + 1);
}

describe("laut's JWS traces (real vectors from mschwaig/laut)", () => {
  test("all 314 signatures of the 157 vector files verify under laut's two test keys, with laut's semantics", () => {
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
    const r = await run(VERIFY_CLI, [
      'bundles',
      ...files.flatMap((f) => ['--file', join(TRACES, f)]),
      '--key',
      join(VEC, 'builderA_key.public'),
      '--key',
      join(VEC, 'builderB_key.public'),
      '--json',
    ]);
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
        const other = files[(files.indexOf(f) + 1) % files.length] as string;
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

  test('the current header generation (no typ, payload without rdrv_json and debug) verifies', () => {
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

  test('a container and appended JSON Lines in one object yield every unit', () => {
    const f = files[0] as string;
    const text = readFileSync(join(TRACES, f), 'utf8');
    const units = splitTraceObject(`${text.trim()}\n{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}\n`);
    assert.equal(units.length, 3);
    assert.equal(splitTraceObject(text).length, 2);
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

// ---------------------------------------------------------------------------------------
// Our bundles, as the daemon writes them for a real Nix build, re-checked against laut's
// profile (docs/slsa-provenance-v1.md, laut-sign/src/attestation.rs) with code that shares
// nothing with src/trace: own PAE, own Ed25519ph (node SHA-512 + @noble/curves point
// arithmetic with the RFC 8032 dom2 prefix built by hand), castore from `nix-store --dump`.

const L_ORDER = 2n ** 252n + 27742317777372353535851937790883648493n;
const leInt = (b: Uint8Array): bigint => BigInt(`0x${Buffer.from(b).reverse().toString('hex') || '0'}`);

function independentEd25519phVerify(publicRaw: Buffer, message: Buffer, sig: Buffer): boolean {
  if (sig.length !== 64) return false;
  const S = leInt(sig.subarray(32));
  if (S >= L_ORDER) return false;
  const dom2 = Buffer.concat([Buffer.from('SigEd25519 no Ed25519 collisions'), Buffer.from([1, 0])]);
  const ph = createHash('sha512').update(message).digest();
  const k = leInt(createHash('sha512').update(dom2).update(sig.subarray(0, 32)).update(publicRaw).update(ph).digest()) % L_ORDER;
  const P = ed25519.Point;
  const R = P.fromBytes(sig.subarray(0, 32));
  const A = P.fromBytes(publicRaw);
  const lhs = P.BASE.multiply(S === 0n ? L_ORDER : S);
  const rhs = k === 0n ? R : R.add(A.multiply(k));
  return lhs.equals(rhs);
}

function spkiHint(publicRaw: Buffer): string {
  const der = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: publicRaw.toString('base64url') }, format: 'jwk' }).export({
    format: 'der',
    type: 'spki',
  });
  return createHash('sha256').update(der).digest('hex');
}

/** OpenSSH's SHA256 fingerprint of an Ed25519 key (RFC 8709 blob), written out here independently. */
function sshHint(publicRaw: Buffer): string {
  const blob = Buffer.concat([Buffer.from([0, 0, 0, 11]), Buffer.from('ssh-ed25519'), Buffer.from([0, 0, 0, 32]), publicRaw]);
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** The NAR's SHA-256 computed here from `nix-store --dump` (every Nix version; not Nix's own metadata). */
const narHex = (path: string): string =>
  createHash('sha256')
    .update(execFileSync('nix-store', ['--dump', path], { env: nixEnv(), maxBuffer: 1 << 30 }))
    .digest('hex');

type Obj = Record<string, unknown>;

/** laut's profile, rule by rule, for one bundle line about rdrv `h` with these outputs. */
function checkLautProfile(line: string, publicRaw: Buffer, h: string, outputs: Map<string, string>): void {
  const b = JSON.parse(line) as Obj;
  assert.deepEqual(Object.keys(b).sort(), ['dsseEnvelope', 'mediaType', 'verificationMaterial'], "bundle has exactly laut's fields (deny_unknown_fields)");
  assert.equal(b['mediaType'], 'application/vnd.dev.sigstore.bundle.v0.3+json');
  const vm = b['verificationMaterial'] as Obj;
  assert.ok(Object.keys(vm).every((k) => k === 'publicKey' || k === 'tlogEntries'));
  const hint = (vm['publicKey'] as Obj)['hint'];
  assert.equal(hint, sshHint(publicRaw), "hint = the key's SSH fingerprint (laut's latest profile, go-securesystemslib)");
  const env = b['dsseEnvelope'] as { payloadType: string; payload: string; signatures: { keyid: string; sig: string }[] };
  assert.equal(env.payloadType, 'application/vnd.in-toto+json');
  assert.equal(env.signatures.length, 1, 'exactly one signature');
  assert.equal(env.signatures[0]?.keyid, hint, 'the same hint in envelope and material');
  const payload = Buffer.from(env.payload, 'base64');
  const paeBytes = Buffer.concat([Buffer.from(`DSSEv1 ${env.payloadType.length} ${env.payloadType} ${payload.length} `), payload]);
  const sig = Buffer.from(env.signatures[0]?.sig ?? '', 'base64');
  assert.ok(independentEd25519phVerify(publicRaw, paeBytes, sig), 'Ed25519ph (SHA-512, empty context) over the PAE');
  assert.ok(
    !nodeVerify(null, paeBytes, createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: publicRaw.toString('base64url') }, format: 'jwk' }), sig),
    'not pure Ed25519',
  );
  const st = JSON.parse(payload.toString()) as {
    _type: string;
    predicateType: string;
    subject: Obj[];
    predicate: { buildDefinition: Obj; runDetails: { builder: Obj; metadata: Obj } };
  };
  assert.equal(st._type, 'https://in-toto.io/Statement/v1');
  assert.equal(st.predicateType, 'https://slsa.dev/provenance/v1');
  const bd = st.predicate.buildDefinition;
  assert.equal(bd['buildType'], 'https://github.com/mschwaig/laut/blob/main/docs/slsa-provenance-v1.md#ca');
  assert.deepEqual(bd['externalParameters'], { resolvedInputHash: h }, 'externalParameters exactly {resolvedInputHash}');
  assert.ok(!('resolvedDependencies' in bd), 'no resolvedDependencies');
  assert.equal(st.predicate.runDetails.builder['id'], `urn:laut:builder:sha256:${spkiHint(publicRaw)}`);
  const version = st.predicate.runDetails.builder['version'] as Obj;
  assert.ok(
    Object.values(version).every((v) => typeof v === 'string'),
    'builder.version values are strings',
  );
  assert.match(String(st.predicate.runDetails.metadata['invocationId']), /^[0-9a-f]{32}$/);
  assert.deepEqual(st.subject.map((x) => x['name']).sort(), [...outputs.keys()].sort(), 'one subject per output, unique names');
  for (const sub of st.subject) {
    const name = sub['name'] as string;
    const path = outputs.get(name) as string;
    const ann = sub['annotations'] as Obj;
    assert.equal(sub['mediaType'], 'application/x-nix-nar');
    assert.deepEqual(sub['digest'], { sha256: narHex(path) }, 'digest.sha256 = hex SHA-256 of the NAR');
    assert.equal(ann['laut_storePath'], path);
    const nar = execFileSync('nix-store', ['--dump', path], { maxBuffer: 64 << 20 });
    assert.equal(
      Buffer.from(ann['laut_castoreEntry'] as string, 'base64').toString('hex'),
      Buffer.from(castoreFromNar(nar)).toString('hex'),
      'laut_castoreEntry = snix Entry of the output, empty name',
    );
    assert.deepEqual(ann['laut_output'], { hashAlgo: 'sha256', method: 'nar' }, 'laut_output as nix derivation show prints a floating CA output');
  }
}

describe("our traces for a real Nix build: laut's profile where it applies, our build type elsewhere", () => {
  let D: DaemonHandle;
  let E: DaemonHandle | undefined;
  let dir: string;
  let staging: string;
  const drvs = new Map<string, string>();
  const rows = new Map<string, { rdrv_hash: string; rdrv_path: string; bundle: string; kind: string }>();
  let raw: Buffer;

  before(async () => {
    dir = tempDir('laut-daemon-');
    const args = [join(FIXTURES, 'laut.nix'), '--argstr', 'salt', salt()];
    const attrs = ['link', 'mixed', 'onfod'];
    const inst = (await must('nix-instantiate', [...args, ...attrs.flatMap((a) => ['-A', a])], { env: nixEnv() })).stdout.trim().split('\n');
    for (const p of (await must('nix-store', ['-qR', ...inst], { env: nixEnv() })).stdout.trim().split('\n')) {
      const m = /-l-([a-z]+)\.drv$/.exec(p);
      if (m?.[1]) drvs.set(m[1], p);
    }
    D = await startDaemon({ keyName: 'laut-interop-1' });
    // the hook's records are kept, so a second builder can trace the same builds later
    staging = join(dir, 'staging');
    mkdirSync(staging);
    const b = await nixBuildWithHook(staging, [...args, ...attrs.flatMap((a) => ['-A', a])]);
    assert.equal(b.code, 0, b.stderr);
    for (const f of readdirSync(staging)) copyFileSync(join(staging, f), join(D.spool, f));
    const r = await D.cli(['push', '--wait']);
    assert.equal(r.code, 0, r.stderr);
    const db = new Database(D.dbFile, { readonly: true });
    for (const row of db.prepare('SELECT drv_name, rdrv_hash, rdrv_path, bundle, kind FROM traces').all() as {
      drv_name: string;
      rdrv_hash: string;
      rdrv_path: string;
      bundle: string;
      kind: string;
    }[])
      rows.set(row.drv_name.replace(/^l-/, ''), row);
    db.close();
    raw = Buffer.from(D.keys.publicKey.split(':')[1] as string, 'base64');
  });

  after(async () => {
    await D?.stop();
    await E?.stop();
  });

  const outputsOf = (name: string): Map<string, string> => {
    const r = rows.get(name);
    assert.ok(r, `trace for l-${name}: have ${[...rows.keys()].join(', ')}`);
    const st = JSON.parse(Buffer.from((JSON.parse(r.bundle) as { dsseEnvelope: { payload: string } }).dsseEnvelope.payload, 'base64').toString()) as {
      subject: { name: string; annotations: { laut_storePath: string } }[];
    };
    return new Map(st.subject.map((s) => [s.name, s.annotations.laut_storePath]));
  };

  const lautKeys = (): Record<string, { publicKey: string }> => ({
    builderA: { publicKey: readFileSync(join(VEC, 'builderA_key.public'), 'utf8').trim() },
    builderB: { publicKey: readFileSync(join(VEC, 'builderB_key.public'), 'utf8').trim() },
  });

  /** laut's exact container for each resolved derivation of link's closure, from our build's facts. */
  const writeLautContainers = (cache: string): void => {
    for (const name of ['tree', 'user', 'link']) {
      const r = rows.get(name);
      assert.ok(r);
      const nix: Record<string, JsonValue> = {};
      const ce: Record<string, JsonValue> = {};
      for (const [o, path] of outputsOf(name)) {
        const sha = Buffer.from(narHex(path), 'hex');
        nix[o] = { hashAlgo: 'sha256', method: 'nar', path, hash: `sha256:${nix32Encode(sha)}` };
        ce[o] = Buffer.from(castoreFromNar(execFileSync('nix-store', ['--dump', path], { maxBuffer: 64 << 20 }))).toString('base64url');
      }
      const payload = (rebuild: number): JsonValue => ({
        in: { rdrv_aterm_ca: r.rdrv_hash },
        out: { 'castore-entry': ce, nix },
        builder: { rebuild_id: rebuild, store_root: '/nix/store', nix_flavor: 'nix', nix_version: '2.8.0' },
      });
      // builder A in the current header generation, builder B in the older one (typ: JWT)
      const container = { signatures: [signLautJws(payload(1), secA), signLautJws(payload(2), secB, true)] };
      writeFileSync(join(cache, 'traces', r.rdrv_hash), JSON.stringify(container, null, 2));
    }
  };

  test("CA derivations whose inputs are all content-addressed or fixed (tree, user, link, onfod) pass laut's profile, checked independently", () => {
    for (const name of ['tree', 'user', 'link', 'onfod']) {
      const r = rows.get(name);
      assert.ok(r, `trace for l-${name}`);
      assert.equal(r.kind, 'ca');
      checkLautProfile(r.bundle, raw, r.rdrv_hash, outputsOf(name));
    }
  });

  test('a CA derivation with an input-addressed input keeps our build type and lists every input with its NAR hash', () => {
    const r = rows.get('mixed');
    assert.ok(r);
    const env = (JSON.parse(r.bundle) as { dsseEnvelope: { payload: string; signatures: { sig: string }[] } }).dsseEnvelope;
    const payload = Buffer.from(env.payload, 'base64');
    const st = JSON.parse(payload.toString()) as {
      predicate: {
        buildDefinition: {
          buildType: string;
          internalParameters: { derivationKind: string };
          resolvedDependencies: { uri: string; digest: { sha256: string } }[];
        };
      };
    };
    const bd = st.predicate.buildDefinition;
    assert.equal(bd.buildType, 'https://buildtrace.dev/build-types/nix-input-addressed/v1');
    assert.equal(bd.internalParameters.derivationKind, 'ca');
    const ia = readFileSync(r.rdrv_path, 'latin1').match(/\/nix\/store\/[a-z0-9]{32}-l-ia/)?.[0] as string;
    assert.ok(ia, 'the rdrv names the IA input');
    assert.deepEqual(
      bd.resolvedDependencies.map((d) => [d.uri, d.digest.sha256]),
      [[`nix-store:${ia}`, narHex(ia)]],
    );
    // pure Ed25519 for our own build type
    const pae = Buffer.concat([Buffer.from(`DSSEv1 28 application/vnd.in-toto+json ${payload.length} `), payload]);
    assert.ok(
      nodeVerify(
        null,
        pae,
        createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' }),
        Buffer.from(env.signatures[0]?.sig ?? '', 'base64'),
      ),
    );
  });

  test('a flat fixed-output derivation records its declared hash (laut_output) and its NAR hash (subject digest)', () => {
    const r = rows.get('fod');
    assert.ok(r);
    const st = JSON.parse(Buffer.from((JSON.parse(r.bundle) as { dsseEnvelope: { payload: string } }).dsseEnvelope.payload, 'base64').toString()) as {
      subject: { digest: { sha256: string }; annotations: { laut_storePath: string; laut_output: Obj } }[];
    };
    const s0 = st.subject[0];
    assert.ok(s0);
    const out = s0.annotations.laut_storePath;
    assert.equal(s0.digest.sha256, narHex(out));
    const flat = createHash('sha256').update(readFileSync(out)).digest('hex');
    assert.deepEqual(s0.annotations.laut_output, { hashAlgo: 'sha256', method: 'flat', hash: flat });
    assert.notEqual(flat, s0.digest.sha256, 'flat hash and NAR hash differ');
  });

  test('trace-verify verifies the closure from these bundles (Ed25519ph and Ed25519 mixed)', async () => {
    const pol = join(dir, 'policy.json');
    writeFileSync(pol, JSON.stringify({ keys: { D: { publicKey: D.keys.publicKey } }, trust: 'D' }));
    for (const t of ['link', 'mixed', 'onfod']) {
      const v = await run(VERIFY_CLI, [drvs.get(t) as string, '--policy', pol, '--db', D.dbFile]);
      assert.equal(v.code, 0, `${t}: ${v.stdout}${v.stderr}`);
      const w = await run(VERIFY_CLI, [drvs.get(t) as string, '--policy', pol, '--db', D.dbFile], { env: { ...process.env, BUILDTRACE_POOL_MIN: '0' } });
      assert.equal(w.code, 0, `${t} (workers): ${w.stdout}${w.stderr}`);
    }
  });

  test("a closure whose traces are laut JWS containers (signed here with laut's test keys) verifies with trace-verify", async () => {
    // laut's exact payload for each resolved derivation of link's closure, from our build's facts
    const cache = join(dir, 'laut-cache');
    mkdirSync(join(cache, 'traces'), { recursive: true });
    writeFileSync(join(cache, 'nix-cache-info'), 'StoreDir: /nix/store\n');
    writeLautContainers(cache);
    const pol = join(dir, 'laut-policy.json');
    writeFileSync(pol, JSON.stringify({ keys: lautKeys(), trust: { threshold: 2, of: ['builderA', 'builderB'] } }));
    const v = await run(VERIFY_CLI, [drvs.get('link') as string, '--policy', pol, '--cache', `file://${cache}`]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    assert.match(v.stdout, /VERIFIED/);
    assert.match(v.stdout, /builderA, builderB/);
    // the worker-thread path (large closures) reads laut's JWS the same way
    const w = await run(VERIFY_CLI, [drvs.get('link') as string, '--policy', pol, '--cache', `file://${cache}`], {
      env: { ...process.env, BUILDTRACE_POOL_MIN: '0' },
    });
    assert.equal(w.code, 0, w.stdout + w.stderr);
    // and with one of laut's signatures tampered, 2-of-2 no longer holds
    const h = (rows.get('user') as { rdrv_hash: string }).rdrv_hash;
    const obj = JSON.parse(readFileSync(join(cache, 'traces', h), 'utf8')) as { signatures: string[] };
    obj.signatures[1] = flipAt(obj.signatures[1] as string, (obj.signatures[1] as string).length - 10);
    writeFileSync(join(cache, 'traces', h), JSON.stringify(obj, null, 2));
    const bad = await run(VERIFY_CLI, [drvs.get('link') as string, '--policy', pol, '--cache', `file://${cache}`, '--json']);
    assert.equal(bad.code, 1, bad.stdout);
    const badProblems = (JSON.parse(bad.stdout) as { problems: { code: string }[] }).problems.map((p) => p.code);
    assert.ok(badProblems.includes('signature-invalid') && badProblems.includes('threshold-not-met'), badProblems.join(','));
  });

  test("laut's latest profile signed with laut's test keys (SSH-fingerprint hints) verifies 2 of 2; hex, empty and unknown hints too", async () => {
    // laut's #ca statements for link's closure, as laut's latest profile writes them for its two
    // test builders: our statement with builder.id of that key, Ed25519ph, SSH hints
    const bundlesFor = (sec: typeof secA): Map<string, string> => {
      const out = new Map<string, string>();
      for (const name of ['tree', 'user', 'link']) {
        const r = rows.get(name);
        assert.ok(r);
        const st = JSON.parse(Buffer.from((JSON.parse(r.bundle) as { dsseEnvelope: { payload: string } }).dsseEnvelope.payload, 'base64').toString()) as {
          predicate: { runDetails: { builder: { id: string } } };
        };
        st.predicate.runDetails.builder.id = `urn:laut:builder:sha256:${spkiHint(Buffer.from(sec.publicKey.raw))}`;
        const line = createBundle(Buffer.from(JSON.stringify(st)), sec);
        checkLautProfile(line, Buffer.from(sec.publicKey.raw), r.rdrv_hash, outputsOf(name));
        out.set(r.rdrv_hash, line);
      }
      return out;
    };
    const a = bundlesFor(secA);
    const b = bundlesFor(secB);
    const pol = join(dir, 'laut-latest-policy.json');
    writeFileSync(pol, JSON.stringify({ keys: lautKeys(), trust: { threshold: 2, of: ['builderA', 'builderB'] } }));
    const rehint = (line: string, h: string): string => {
      const o = JSON.parse(line) as { verificationMaterial: { publicKey: { hint: string } }; dsseEnvelope: { signatures: { keyid: string }[] } };
      o.verificationMaterial.publicKey.hint = h;
      (o.dsseEnvelope.signatures[0] as { keyid: string }).keyid = h;
      return JSON.stringify(o);
    };
    const variants: [string, (line: string, sec: typeof secA) => string][] = [
      ['SSH hints', (l) => l],
      ['hex-SPKI hints (older bundles)', (l, sec) => rehint(l, spkiHint(Buffer.from(sec.publicKey.raw)))],
      ['empty hints', (l) => rehint(l, '')],
      ['garbage hints', (l) => rehint(l, 'SHA256:garbage')],
      ["each builder carrying the other's hint", (l, sec) => rehint(l, sshHint(Buffer.from((sec === secA ? secB : secA).publicKey.raw)))],
    ];
    for (const [what, f] of variants) {
      const cache = join(dir, `laut-latest-${what.replace(/\W+/g, '-')}`);
      mkdirSync(join(cache, 'traces'), { recursive: true });
      writeFileSync(join(cache, 'nix-cache-info'), 'StoreDir: /nix/store\n');
      for (const [h, line] of a) writeFileSync(join(cache, 'traces', h), `${f(line, secA)}\n${f(b.get(h) as string, secB)}\n`);
      const v = await run(VERIFY_CLI, [drvs.get('link') as string, '--policy', pol, '--cache', `file://${cache}`]);
      assert.equal(v.code, 0, `${what}: ${v.stdout}${v.stderr}`);
      assert.match(v.stdout, /signers: builderA, builderB/, what);
    }
    // and a changed payload byte in one of laut's bundles breaks 2 of 2 (exit 1, signature-invalid)
    const cache = join(dir, 'laut-latest-tampered');
    mkdirSync(join(cache, 'traces'), { recursive: true });
    writeFileSync(join(cache, 'nix-cache-info'), 'StoreDir: /nix/store\n');
    const hUser = (rows.get('user') as { rdrv_hash: string }).rdrv_hash;
    for (const [h, line] of a) {
      let la = line;
      if (h === hUser) {
        const o = JSON.parse(line) as { dsseEnvelope: { payload: string } };
        const p = Buffer.from(o.dsseEnvelope.payload, 'base64');
        p[p.length - 3] = (p[p.length - 3] ?? 0) ^ 1;
        o.dsseEnvelope.payload = p.toString('base64');
        la = JSON.stringify(o);
      }
      writeFileSync(join(cache, 'traces', h), `${la}\n${b.get(h) as string}\n`);
    }
    const bad = await run(VERIFY_CLI, [drvs.get('link') as string, '--policy', pol, '--cache', `file://${cache}`, '--json']);
    assert.equal(bad.code, 1, bad.stdout + bad.stderr);
    assert.match(bad.stdout, /signature-invalid/);
  });

  test("one cache, laut's containers and our daemon's bundles for the same resolved derivations: laut's files stay byte-identical, and 3 of 3 (laut's two keys and ours) verify", async () => {
    const cache = join(dir, 'shared-cache');
    mkdirSync(join(cache, 'traces'), { recursive: true });
    writeLautContainers(cache);
    const before = new Map(readdirSync(join(cache, 'traces')).map((f) => [f, readFileSync(join(cache, 'traces', f))]));
    // a second builder traces the same builds and publishes into that cache
    E = await startDaemon({ keyName: 'laut-interop-2', extraConfig: { caches: [{ url: `file://${cache}` }] } });
    for (const f of readdirSync(staging)) copyFileSync(join(staging, f), join(E.spool, f));
    const p = await E.cli(['push', '--wait']);
    assert.equal(p.code, 0, p.stdout + p.stderr);
    for (const [f, bytes] of before) assert.ok(readFileSync(join(cache, 'traces', f)).equals(bytes), `laut's traces/${f} is byte-identical`);
    const pol = join(dir, 'shared-policy.json');
    writeFileSync(
      pol,
      JSON.stringify({ keys: { ...lautKeys(), E: { publicKey: E.keys.publicKey } }, trust: { threshold: 3, of: ['builderA', 'builderB', 'E'] } }),
    );
    const v = await run(VERIFY_CLI, [drvs.get('link') as string, '--policy', pol, '--cache', `file://${cache}`]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    // signers are listed in code-unit order (world.ts byStr): upper case first
    assert.match(v.stdout, /signers: E, builderA, builderB;/);
    // laut's containers still hold exactly laut's two signatures each
    for (const f of before.keys()) assert.equal(splitTraceObject(readFileSync(join(cache, 'traces', f), 'utf8')).length, 2);
  });
});
