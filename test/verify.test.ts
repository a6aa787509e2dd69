// ci: nix (runs on every Nix: the host and the trixie and sid chroots; see scripts/run-tests.sh)
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { FileCache } from '../src/cache/file-cache.js';
import { appendLines } from '../src/cache/backend.js';
import { parseSecretKey } from '../src/nix/nix-key.js';
import { nix32Encode } from '../src/nix/nix32.js';
import { keyAttestationPreimage, reportDataFor } from '../src/tee/binding.js';
import { createSimulatedPlatform, pem } from '../src/tee/simulated.js';
import { createBundle } from '../src/trace/bundle.js';
import { evidenceToJson } from '../src/verify/sources.js';
import { parseDerivation } from '../src/nix/aterm.js';
import { resolveDerivation } from '../src/nix/resolve.js';
import { BUILD_TYPE_CA, BUILD_TYPE_IA, NAR_MEDIA_TYPE, buildStatement } from '../src/trace/statement.js';
import { groupBySignedContent } from '../src/verify/signed-content.js';
import {
  assertRefused,
  FIXTURES,
  must,
  nixBuildWithHook,
  nixEnv,
  run,
  salt,
  sha256HexOf,
  startDaemon,
  tempDir,
  VERIFY_CLI,
  type DaemonHandle,
} from './helpers.js';

interface Result {
  verified: boolean;
  target: string;
  outputs: Record<string, string>;
  derivationsChecked: number;
  signers: string[];
  problems: { drv: string; code: string; detail: string; signer?: string }[];
  keyStatus: Record<string, { admitted: boolean; detail: string }>;
}

const NONDET = ['conv1', 'conv2', 'conv3', 'div1', 'div2', 'div3', 'multi', 'cmulti', 'cuse', 'lib', 'app', 'capp'];

describe('trace-verify re-does resolution across real closures signed by three builders', () => {
  let A: DaemonHandle;
  let B: DaemonHandle;
  let C: DaemonHandle;
  let dir: string;
  let args: string[];
  /** rfod's declared NAR sha256, hex, as nix-hash computed it. */
  let rfodHex: string;
  const drv = new Map<string, string>();

  const names = (spool: string): Map<string, string> => {
    const m = new Map<string, string>();
    for (const f of readdirSync(spool)) {
      const rec = JSON.parse(readFileSync(join(spool, f), 'utf8')) as { drv: string };
      m.set(f, rec.drv.replace(/^.*?-v-/, '').replace(/\.drv$/, ''));
    }
    return m;
  };
  const feed = async (d: DaemonHandle, spool: string, keep: (name: string) => boolean): Promise<void> => {
    for (const [f, n] of names(spool)) if (keep(n)) copyFileSync(join(spool, f), join(d.spool, `${f.replace('.json', '')}-x.json`));
    const r = await d.cli(['push', '--wait']);
    assert.equal(r.code, 0, r.stderr);
  };

  before(async () => {
    dir = tempDir('verify-');
    const s = salt();
    const nondet = join(dir, 'nondet');
    // rfod's declared hash: the NAR sha256 of the file it will write, computed by Nix's own nix-hash
    const rfodFile = join(dir, 'rfod');
    writeFileSync(rfodFile, `${s} rfod`, { mode: 0o644 });
    const rfodHash = (await must('nix-hash', ['--type', 'sha256', '--base32', rfodFile], { env: nixEnv() })).stdout.trim();
    rfodHex = (await must('nix-hash', ['--type', 'sha256', rfodFile], { env: nixEnv() })).stdout.trim();
    args = [join(FIXTURES, 'verify.nix'), '--argstr', 'salt', s, '--argstr', 'nondet', nondet, '--argstr', 'rfodHash', rfodHash];
    const attrs = ['agree3', 'conv3', 'div3', 'ia3', 'top', 'multi', 'cuse', 'fod', 'app', 'capp', 'fuse', 'ruse'];
    const inst = (await must('nix-instantiate', [...args, ...attrs.flatMap((a) => ['-A', a])], { env: nixEnv() })).stdout.trim().split('\n');
    const closure = (await must('nix-store', ['-qR', ...inst], { env: nixEnv() })).stdout
      .trim()
      .split('\n')
      .filter((p) => p.endsWith('.drv'));
    for (const p of closure) drv.set(p.replace(/^.*?-v-/, '').replace(/\.drv$/, ''), p);
    [A, B, C] = await Promise.all([startDaemon({ keyName: 'builder-a' }), startDaemon({ keyName: 'builder-b' }), startDaemon({ keyName: 'builder-c' })]);

    // builder A builds everything
    writeFileSync(nondet, `A ${s}\n`);
    const stagingA = join(dir, 'staging-a');
    mkdirSync(stagingA);
    const ba = await nixBuildWithHook(stagingA, [...args, ...attrs.flatMap((a) => ['-A', a])]);
    assert.equal(ba.code, 0, ba.stderr);
    await feed(A, stagingA, () => true);

    // builder B rebuilds the non-deterministic part and gets different outputs there
    const db = new Database(A.dbFile, { readonly: true });
    const outs = (
      db
        .prepare(`SELECT o.path FROM outputs o JOIN traces t ON t.id = o.trace_id WHERE t.drv_name IN (${NONDET.map(() => '?').join(',')})`)
        .all(...NONDET.map((n) => `v-${n}`)) as { path: string }[]
    ).map((r) => r.path);
    db.close();
    // with them go the resolved .drv files Nix wrote, which reference the old outputs
    const doomed = (await must('nix-store', ['--query', '--referrers-closure', ...new Set(outs)], { env: nixEnv() })).stdout.trim().split('\n');
    await must('nix-store', ['--delete', ...doomed], { env: nixEnv() });
    writeFileSync(nondet, `B ${s}\n`);
    const stagingB = join(dir, 'staging-b');
    mkdirSync(stagingB);
    const bb = await nixBuildWithHook(stagingB, [...args, '-A', 'conv3', '-A', 'div3', '-A', 'multi', '-A', 'cuse', '-A', 'app', '-A', 'capp']);
    assert.equal(bb.code, 0, bb.stderr);
    await feed(B, stagingB, () => true);
    // B and C also built the deterministic derivations, with the same results as A
    await feed(B, stagingA, (n) => !NONDET.includes(n));
    await feed(C, stagingA, (n) => !NONDET.includes(n));
  });

  after(async () => {
    await Promise.all([A.stop(), B.stop(), C.stop()]);
  });

  let n = 0;
  const policy = (trust: unknown, keys: Record<string, DaemonHandle | { publicKey: string; tee?: unknown }> = { A, B, C }): string => {
    const f = join(dir, `policy-${n++}.json`);
    const k: Record<string, unknown> = {};
    for (const [name, h] of Object.entries(keys)) k[name] = 'keys' in h ? { publicKey: h.keys.publicKey } : h;
    writeFileSync(f, JSON.stringify({ keys: k, trust }));
    return f;
  };
  const verify = async (target: string, pol: string, sources: string[], extra: string[] = []): Promise<{ code: number; r: Result; stdout: string }> => {
    const p = await run(VERIFY_CLI, [target, '--policy', pol, ...sources, ...extra, '--json'], { env: { ...process.env, BUILDTRACE_POOL: 'never' } });
    assert.ok(p.code === 0 || p.code === 1, `exit ${p.code}: ${p.stderr}`);
    // the worker-thread path (used for large closures) must reach the same verdict
    const w = await run(VERIFY_CLI, [target, '--policy', pol, ...sources, ...extra, '--json'], { env: { ...process.env, BUILDTRACE_POOL: 'always' } });
    assert.equal(w.code, p.code, `worker path: ${w.stdout}`);
    const strip = (o: string): unknown => {
      const r = JSON.parse(o) as Result;
      return { ...r, problems: [...r.problems].map((x) => JSON.stringify(x)).sort() };
    };
    assert.deepEqual(strip(w.stdout), strip(p.stdout));
    return { code: p.code, r: JSON.parse(p.stdout) as Result, stdout: p.stdout };
  };
  const dbs = (...hs: DaemonHandle[]): string[] => hs.flatMap((h) => ['--db', h.dbFile]);
  const both = { threshold: 2, of: ['A', 'B'] };

  test('linear chain where both signers agree', async () => {
    const { code, r } = await verify(drv.get('agree3') as string, policy(both), dbs(A, B));
    assert.equal(code, 0, JSON.stringify(r.problems));
    assert.deepEqual(r.signers, ['A', 'B']);
    assert.equal(r.derivationsChecked, 3);
    // human output names the outputs
    const h = await run(VERIFY_CLI, [drv.get('agree3') as string, '--policy', policy(both), ...dbs(A, B)]);
    assert.match(h.stdout, /^VERIFIED .*v-agree3\.drv/);
  });

  test('divergence upstream that converges downstream is accepted; the divergent position alone is not', async () => {
    const conv3 = await verify(drv.get('conv3') as string, policy(both), dbs(A, B));
    assert.equal(conv3.code, 0, JSON.stringify(conv3.r.problems));
    const conv1 = await verify(drv.get('conv1') as string, policy(both), dbs(A, B));
    assert.equal(conv1.code, 1);
    assert.ok(conv1.r.problems.some((p) => p.code === 'threshold-not-met' && p.drv === drv.get('conv1')));
  });

  test('intermediate disagreement that never converges fails 2-of-2 and passes 1-of-2', async () => {
    const r2 = await verify(drv.get('div3') as string, policy(both), dbs(A, B));
    assert.equal(r2.code, 1);
    const t = r2.r.problems.filter((p) => p.code === 'threshold-not-met');
    assert.ok(t.length > 0);
    assert.ok(
      t.every((p) => /signed by \{(A|B)\}/.test(p.detail)),
      JSON.stringify(t),
    );
    const r1 = await verify(drv.get('div3') as string, policy({ threshold: 1, of: ['A', 'B'] }), dbs(A, B));
    assert.equal(r1.code, 0);
    assert.equal(r1.r.signers.length, 1);
  });

  test('a signer counts once however many bundles it published', async () => {
    const cache = join(dir, 'dup-cache');
    const c = new FileCache(cache);
    const db = new Database(A.dbFile, { readonly: true });
    for (const row of db.prepare('SELECT rdrv_hash, bundle FROM traces').all() as { rdrv_hash: string; bundle: string }[])
      await appendLines(c, `traces/${row.rdrv_hash}`, [row.bundle]);
    db.close();
    const { code, r } = await verify(drv.get('agree3') as string, policy(both), [...dbs(A, A), '--cache', `file://${cache}`]);
    assert.equal(code, 1);
    assert.ok(r.problems.some((p) => p.code === 'threshold-not-met' && /signed by \{A\}/.test(p.detail)));
  });

  test('1-of-n and nested thresholds', async () => {
    assert.equal((await verify(drv.get('agree3') as string, policy({ threshold: 1, of: ['A', 'B', 'C'] }), dbs(C))).code, 0);
    const nested = { threshold: 2, of: ['A', { threshold: 1, of: ['B', 'C'] }] };
    assert.equal((await verify(drv.get('agree3') as string, policy(nested), dbs(A, C))).code, 0);
    const onlyA = await verify(drv.get('agree3') as string, policy(nested), dbs(A));
    assert.equal(onlyA.code, 1);
    assert.ok(onlyA.r.problems.some((p) => /1 more of \{1 of \{B, C\}\}|more of/.test(p.detail)));
  });

  test('multi-output target: a disputed output counts even when only another is asked for', async () => {
    // Before #10 `--output out` ignored the disputed dev. But out may reference dev at run time
    // (traces do not record references), so the signers do not agree on what the consumer may
    // install: 2-of-2 fails and names dev; 1-of-2 verifies out.
    const m = drv.get('multi') as string;
    const outOnly = await verify(m, policy(both), dbs(A, B), ['--output', 'out']);
    assert.equal(outOnly.code, 1);
    assert.ok(
      outOnly.r.problems.some(
        (p) => p.code === 'content-disputed' && p.drv === m && /-v-multi-dev/.test(p.detail) && / by A\b/.test(p.detail) && / by B\b/.test(p.detail),
      ),
      JSON.stringify(outOnly.r.problems),
    );
    const one = await verify(m, policy({ threshold: 1, of: ['A', 'B'] }), dbs(A, B), ['--output', 'out']);
    assert.equal(one.code, 0, JSON.stringify(one.r.problems));
    assert.deepEqual(Object.keys(one.r.outputs), ['out']);
    const all = await verify(m, policy(both), dbs(A, B));
    assert.equal(all.code, 1, 'out and dev together have no claim both signers agree on');
    assert.ok(
      all.r.problems.some((p) => p.code === 'content-disputed' && p.drv === m),
      JSON.stringify(all.r.problems),
    );
  });

  test('multi-output downstream: one consistent claim, never outputs mixed from two claims', async () => {
    // A and B disagree on both outputs of cmulti. C signs cuse resolved with A's "out" and
    // B's "dev" — a resolution no single claim supports. Only the claims of A and B for
    // cmulti and C's bundle are in the cache: cuse must not verify.
    const claim = (h: DaemonHandle): Map<string, string> => {
      const db = new Database(h.dbFile, { readonly: true });
      const rows = db.prepare("SELECT o.name, o.path FROM outputs o JOIN traces t ON t.id = o.trace_id WHERE t.drv_name = 'v-cmulti'").all() as {
        name: string;
        path: string;
      }[];
      db.close();
      return new Map(rows.map((r) => [r.name, r.path]));
    };
    const a = claim(A);
    const b = claim(B);
    assert.notEqual(a.get('out'), b.get('out'));
    assert.notEqual(a.get('dev'), b.get('dev'));
    const cmultiDrv = drv.get('cmulti') as string;
    const cuseDrv = drv.get('cuse') as string;
    const udrv = parseDerivation(readFileSync(cuseDrv, 'latin1'), cuseDrv);
    const mixed = resolveDerivation(udrv, (d, o) => (d === cmultiDrv ? (o === 'out' ? a.get('out') : b.get('dev')) : undefined));
    const cKey = parseSecretKey(readFileSync(C.keys.secretFile, 'utf8'));
    const statement = buildStatement({
      kind: 'ca',
      resolvedInputHash: mixed.path.hashPart,
      drvName: 'v-cuse',
      outputs: [{ name: 'out', path: `/nix/store/${'0'.repeat(32)}-v-cuse`, sha256: 'cd'.repeat(32), narSize: 100, declared: { hashAlgo: 'r:sha256' } }],
      inputs: [],
      keyFingerprint: cKey.publicKey.fingerprint,
      versions: {},
      invocationId: '0'.repeat(32),
      finishedOn: new Date().toISOString(),
    });
    const cache = new FileCache(join(dir, 'frankenbuild'));
    await appendLines(cache, `traces/${mixed.path.hashPart}`, [createBundle(Buffer.from(JSON.stringify(statement)), cKey)]);
    for (const h of [A, B]) {
      const db = new Database(h.dbFile, { readonly: true });
      const row = db.prepare("SELECT rdrv_hash, bundle FROM traces WHERE drv_name = 'v-cmulti'").get() as { rdrv_hash: string; bundle: string };
      db.close();
      await appendLines(cache, `traces/${row.rdrv_hash}`, [row.bundle]);
    }
    const { code, r } = await verify(cuseDrv, policy({ threshold: 1, of: ['A', 'B', 'C'] }), ['--cache', cache.url]);
    assert.equal(code, 1, 'a mixed resolution must not verify');
    assert.ok(
      r.problems.filter((p) => p.drv === cuseDrv).every((p) => p.code === 'no-bundle'),
      JSON.stringify(r.problems),
    );
    assert.equal(r.problems.filter((p) => p.drv === cuseDrv).length, 2, 'exactly the two consistent resolutions were tried');
    // with the real builders' databases the consistent claims verify 1-of-3
    assert.equal((await verify(cuseDrv, policy({ threshold: 1, of: ['A', 'B', 'C'] }), dbs(A, B))).code, 0);
  });

  test('shared dependencies in a DAG are checked once', async () => {
    const { code, r } = await verify(drv.get('top') as string, policy(both), dbs(A, B));
    assert.equal(code, 0);
    assert.equal(r.derivationsChecked, 4);
  });

  test('a target without claims, and a fixed-output target', async () => {
    const fresh = (
      await must(
        'nix-instantiate',
        ['-E', `derivation { name = "unbuilt-${salt()}"; system = builtins.currentSystem; builder = "/bin/sh"; args = ["-c" "echo > $out"]; }`],
        { env: nixEnv() },
      )
    ).stdout.trim();
    const none = await verify(fresh, policy('A'), dbs(A, B, C));
    assert.equal(none.code, 1);
    assert.ok(
      none.r.problems.some((p) => p.code === 'no-bundle' && p.drv === fresh),
      JSON.stringify(none.r.problems),
    );
    // signed only by a key the trust tree does not name
    const wrong = await verify(drv.get('agree3') as string, policy('A'), dbs(C));
    assert.equal(wrong.code, 1);
    assert.ok(wrong.r.problems.some((p) => p.code === 'threshold-not-met' && /signed by \{C\}/.test(p.detail)));
    const fod = await verify(drv.get('fod') as string, policy('A'), dbs(A));
    assert.equal(fod.code, 0);
    assert.deepEqual(fod.r.signers, []);
  });

  // --- tampering: each must fail and name the derivation ---
  const aTrace = (name: string): { rdrv_hash: string; bundle: string; statement: Buffer } => {
    const db = new Database(A.dbFile, { readonly: true });
    const row = db.prepare('SELECT rdrv_hash, bundle, statement FROM traces WHERE drv_name = ?').get(`v-${name}`) as {
      rdrv_hash: string;
      bundle: string;
      statement: Buffer;
    };
    db.close();
    return row;
  };

  test('an output hash changed in a bundle: signature invalid at that derivation', async () => {
    const cache = new FileCache(join(dir, 'tamper-out'));
    const ia1 = aTrace('ia1');
    const b = JSON.parse(ia1.bundle) as { dsseEnvelope: { payload: string } };
    // edit the signed bytes in place (no re-serialisation, which alone would break the signature)
    const text = Buffer.from(b.dsseEnvelope.payload, 'base64').toString('utf8');
    const st = JSON.parse(text) as { subject: { digest: { sha256: string } }[] };
    const old = (st.subject[0] as { digest: { sha256: string } }).digest.sha256;
    assert.equal(text.split(`"sha256":"${old}"`).length, 2, 'the output digest occurs once in the statement');
    const edited = text.replace(`"sha256":"${old}"`, `"sha256":"${'00'.repeat(32)}"`);
    assert.equal(edited.length, text.length);
    assert.equal((JSON.parse(edited) as typeof st).subject[0]?.digest.sha256, '00'.repeat(32), 'the tamper took effect');
    b.dsseEnvelope.payload = Buffer.from(edited).toString('base64');
    await appendLines(cache, `traces/${ia1.rdrv_hash}`, [JSON.stringify(b)]);
    const { code, r } = await verify(drv.get('ia2') as string, policy('A', { A }), ['--cache', cache.url]);
    assert.equal(code, 1);
    assert.ok(r.problems.some((p) => p.code === 'signature-invalid' && p.drv === drv.get('ia1')));
    assert.ok(r.problems.some((p) => p.code === 'dependency-unsupported' && p.drv === drv.get('ia2')));
  });

  test('an IA input hash changed (re-signed by the lying builder): input hash mismatch with both hashes', async () => {
    const cache = new FileCache(join(dir, 'tamper-in'));
    const ia1 = aTrace('ia1');
    const ia2 = aTrace('ia2');
    await appendLines(cache, `traces/${ia1.rdrv_hash}`, [ia1.bundle]);
    const st = JSON.parse(ia2.statement.toString('utf8')) as { predicate: { buildDefinition: { resolvedDependencies: { digest: { sha256: string } }[] } } };
    const dep = st.predicate.buildDefinition.resolvedDependencies[0] as { digest: { sha256: string } };
    const real = dep.digest.sha256;
    dep.digest.sha256 = 'ab'.repeat(32);
    const key = parseSecretKey(readFileSync(A.keys.secretFile, 'utf8'));
    await appendLines(cache, `traces/${ia2.rdrv_hash}`, [createBundle(Buffer.from(JSON.stringify(st)), key)]);
    const { code, r } = await verify(drv.get('ia2') as string, policy('A', { A }), ['--cache', cache.url]);
    assert.equal(code, 1);
    const p = r.problems.find((x) => x.code === 'input-hash-mismatch');
    assert.ok(p, JSON.stringify(r.problems));
    assert.equal(p.drv, drv.get('ia2'));
    assert.ok(p.detail.includes('ab'.repeat(32)) && p.detail.includes(real));
  });

  test('a signature from a key the policy does not admit', async () => {
    const { code, r } = await verify(drv.get('ia2') as string, policy('B', { B }), dbs(C));
    assert.equal(code, 1);
    assert.ok(r.problems.some((p) => p.code === 'key-not-admitted' && p.drv === drv.get('ia1')));
  });

  test('a bundle replayed under another resolved derivation', async () => {
    const cache = new FileCache(join(dir, 'replay'));
    const ia1 = aTrace('ia1');
    const ia2 = aTrace('ia2');
    await appendLines(cache, `traces/${ia1.rdrv_hash}`, [ia1.bundle]);
    await appendLines(cache, `traces/${ia2.rdrv_hash}`, [ia1.bundle]);
    const { code, r } = await verify(drv.get('ia2') as string, policy('A', { A }), ['--cache', cache.url]);
    assert.equal(code, 1);
    assert.ok(r.problems.some((p) => p.code === 'replayed' && p.drv === drv.get('ia2')));
  });

  // --- #10: claims, worlds, equivocation ---
  const traceOf = (
    h: DaemonHandle,
    name: string,
  ): { rdrv_hash: string; bundle: string; statement: Buffer; outputs: { name: string; path: string; nar_hash: string; nar_size: number }[] } => {
    const db = new Database(h.dbFile, { readonly: true });
    const row = db.prepare('SELECT id, rdrv_hash, bundle, statement FROM traces WHERE drv_name = ?').get(`v-${name}`) as {
      id: number;
      rdrv_hash: string;
      bundle: string;
      statement: Buffer;
    };
    const outputs = db.prepare('SELECT name, path, nar_hash, nar_size FROM outputs WHERE trace_id = ?').all(row.id) as {
      name: string;
      path: string;
      nar_hash: string;
      nar_size: number;
    }[];
    db.close();
    return { ...row, outputs };
  };
  const secret = (h: DaemonHandle) => parseSecretKey(readFileSync(h.keys.secretFile, 'utf8'));
  type Json = Record<string, unknown>;
  // laut's #ca profile is signed Ed25519ph, our build type pure Ed25519 (as the daemon does)
  const resign = (h: DaemonHandle, st: Json): string =>
    createBundle(
      Buffer.from(JSON.stringify(st)),
      secret(h),
      (st as { predicate: { buildDefinition: Json } }).predicate.buildDefinition['buildType'] === BUILD_TYPE_CA ? 'ed25519ph' : 'ed25519',
    );
  const one = { threshold: 1, of: ['A', 'B'] };
  /** h's statement for `name` with input `input`'s NAR hash replaced by `fake` (to re-sign as a lying builder), and the real hash. */
  const withInputHash = (h: DaemonHandle, name: string, input: string, fake: string): { t: ReturnType<typeof traceOf>; st: Json; real: string } => {
    const t = traceOf(h, name);
    const st = JSON.parse(t.statement.toString('utf8')) as {
      predicate: { buildDefinition: { resolvedDependencies: { uri: string; digest: { sha256: string } }[] } };
    };
    const dep = st.predicate.buildDefinition.resolvedDependencies.find((x) => x.uri.includes(`-v-${input}`));
    assert.ok(dep, `${name} lists ${input} as an input`);
    const real = dep.digest.sha256;
    dep.digest.sha256 = fake;
    return { t, st: st as unknown as Json, real };
  };

  test('#10 item 1: an input-addressed input with disputed content is never pooled (IA consumer)', async () => {
    const lib = traceOf(A, 'lib').outputs[0] as { path: string; nar_hash: string };
    const libB = traceOf(B, 'lib').outputs[0] as { path: string; nar_hash: string };
    assert.equal(lib.path, libB.path, 'input-addressed: one path');
    assert.notEqual(lib.nar_hash, libB.nar_hash, 'non-deterministic: two contents');
    assert.deepEqual(traceOf(A, 'app').outputs, traceOf(B, 'app').outputs, 'app is byte-identical');
    const app = drv.get('app') as string;
    const r2 = await verify(app, policy(both), dbs(A, B));
    assert.equal(r2.code, 1, 'A and B do not agree on what lib is');
    const d = r2.r.problems.find((p) => p.code === 'content-disputed');
    assert.ok(d, JSON.stringify(r2.r.problems));
    assert.equal(d.drv, drv.get('lib'));
    assert.ok(d.detail.includes(lib.path) && d.detail.includes(lib.nar_hash) && d.detail.includes(libB.nar_hash), d.detail);
    const r1 = await verify(app, policy(one), dbs(A, B));
    assert.equal(r1.code, 0, JSON.stringify(r1.r.problems));
    assert.equal(r1.r.signers.length, 1);
    // the verified world binds lib to the one signer's content
    const w = (r1.r as unknown as { world: Record<string, { narSha256?: string; producerDrv?: string }> }).world;
    assert.equal(w[lib.path]?.narSha256, r1.r.signers[0] === 'A' ? lib.nar_hash : libB.nar_hash);
    assert.equal(w[lib.path]?.producerDrv, drv.get('lib'));
  });

  test('#10 item 1: a CA derivation whose input-addressed input is disputed (CA consumer)', async () => {
    const capp = drv.get('capp') as string;
    // the daemon writes our build type for a CA derivation with an IA input (#ca could not bind lib)
    const own = JSON.parse(traceOf(A, 'capp').statement.toString('utf8')) as Json & {
      subject: (Json & { annotations: Json })[];
      predicate: { buildDefinition: Json };
    };
    assert.equal(own.predicate.buildDefinition['buildType'], BUILD_TYPE_IA);
    // a #ca statement (laut's profile lists no inputs) cannot bind lib: refused, naming lib
    const forged = new FileCache(join(dir, 'capp-ca'));
    const asCa = {
      ...own,
      subject: own.subject.map((x) => ({ ...x, annotations: { ...x.annotations, laut_castoreEntry: 'CgA=' } })),
      predicate: {
        ...own.predicate,
        buildDefinition: { buildType: BUILD_TYPE_CA, externalParameters: own.predicate.buildDefinition['externalParameters'] as Json },
      },
    };
    for (const h of [A, B]) {
      const l = traceOf(h, 'lib');
      await appendLines(forged, `traces/${l.rdrv_hash}`, [l.bundle]);
    }
    await appendLines(forged, `traces/${traceOf(A, 'capp').rdrv_hash}`, [resign(A, asCa)]);
    const ca = await verify(capp, policy(one), ['--cache', forged.url]);
    assert.equal(ca.code, 1);
    const libPath = (traceOf(A, 'lib').outputs[0] as { path: string }).path;
    assert.ok(
      ca.r.problems.some((p) => p.code === 'input-missing' && p.drv === capp && p.detail.includes(libPath) && p.signer !== undefined),
      JSON.stringify(ca.r.problems),
    );
    // our build type with derivationKind "ca" lists lib's content, as each builder saw it
    const cache = new FileCache(join(dir, 'capp-ia'));
    for (const h of [A, B]) {
      const l = traceOf(h, 'lib');
      await appendLines(cache, `traces/${l.rdrv_hash}`, [l.bundle]);
      const t = traceOf(h, 'capp');
      const st = JSON.parse(t.statement.toString('utf8')) as Json & { predicate: { buildDefinition: Json } };
      const lo = l.outputs[0] as { path: string; nar_hash: string; nar_size: number };
      st.predicate.buildDefinition = {
        buildType: BUILD_TYPE_IA,
        externalParameters: st.predicate.buildDefinition['externalParameters'] as Json,
        internalParameters: { derivationKind: 'ca', drvName: 'v-capp' },
        resolvedDependencies: [
          { uri: `nix-store:${lo.path}`, digest: { sha256: lo.nar_hash }, mediaType: NAR_MEDIA_TYPE, annotations: { buildtrace_narSize: lo.nar_size } },
        ],
      };
      await appendLines(cache, `traces/${t.rdrv_hash}`, [resign(h, st)]);
    }
    assert.equal(traceOf(A, 'capp').rdrv_hash, traceOf(B, 'capp').rdrv_hash);
    const r2 = await verify(capp, policy(both), ['--cache', cache.url]);
    assert.equal(r2.code, 1, 'same CA output, but A and B disagree on its input lib');
    assert.ok(
      r2.r.problems.some((p) => p.code === 'content-disputed' && p.drv === drv.get('lib')),
      JSON.stringify(r2.r.problems),
    );
    const r1 = await verify(capp, policy(one), ['--cache', cache.url]);
    assert.equal(r1.code, 0, JSON.stringify(r1.r.problems));
    assert.equal(r1.r.signers.length, 1);
  });

  test('#10: a fixed-output derivation whose signers disagree on its NAR hash fails 2-of-2', async () => {
    const fuse = drv.get('fuse') as string;
    assert.equal((await verify(fuse, policy(both), dbs(A, B))).code, 0);
    // B says the flat FOD's output had another NAR (a liar, or another executable bit)
    const { t, st, real } = withInputHash(B, 'fuse', 'fod', 'ee'.repeat(32));
    const cache = new FileCache(join(dir, 'fod-dispute'));
    await appendLines(cache, `traces/${t.rdrv_hash}`, [traceOf(A, 'fuse').bundle, resign(B, st)]);
    const r2 = await verify(fuse, policy(both), ['--cache', cache.url]);
    assert.equal(r2.code, 1);
    const d = r2.r.problems.find((p) => p.code === 'content-disputed');
    assert.ok(d && d.drv === drv.get('fod') && d.detail.includes(real) && d.detail.includes('ee'.repeat(32)), JSON.stringify(r2.r.problems));
    const r1 = await verify(fuse, policy(one), ['--cache', cache.url]);
    assert.equal(r1.code, 0, JSON.stringify(r1.r.problems));
  });

  test('a recursive fixed-output input whose NAR hash differs from the declared one: input-hash-mismatch (lying builder)', async () => {
    const ruse = drv.get('ruse') as string;
    const rfod = drv.get('rfod') as string;
    assert.equal((await verify(ruse, policy('A', { A }), dbs(A))).code, 0, 'the honest trace verifies');
    const { t, st, real: declared } = withInputHash(A, 'ruse', 'rfod', 'ab'.repeat(32));
    assert.equal(declared, rfodHex, 'the honest statement carries the declared hash');
    const cache = new FileCache(join(dir, 'rfod-lie'));
    await appendLines(cache, `traces/${t.rdrv_hash}`, [resign(A, st)]);
    const r = await verify(ruse, policy('A', { A }), ['--cache', cache.url]);
    assert.equal(r.code, 1);
    const p = r.r.problems.find((x) => x.code === 'input-hash-mismatch');
    assert.ok(p, JSON.stringify(r.r.problems));
    assert.equal(p.drv, ruse);
    assert.ok(p.detail.includes('ab'.repeat(32)) && p.detail.includes(declared) && p.detail.includes(rfod), p.detail);
  });

  test('a flat fixed-output input with a lied NAR hash: accepted as a claim (flat declares no NAR hash), caught by the last mile', async () => {
    // DESIGN: a flat FOD declares its file's hash, not its NAR hash (closure.ts fodLeaf), so the
    // claim stands; the local store knows the real NAR hash of fod's output: content-mismatch.
    const fuse = drv.get('fuse') as string;
    const { t, st, real } = withInputHash(A, 'fuse', 'fod', 'cd'.repeat(32));
    const cache = new FileCache(join(dir, 'flat-fod-lie'));
    await appendLines(cache, `traces/${t.rdrv_hash}`, [resign(A, st)]);
    const r = await verify(fuse, policy('A', { A }), ['--cache', cache.url]);
    assert.equal(r.code, 1);
    assert.ok(!r.r.problems.some((x) => x.code === 'input-hash-mismatch'), JSON.stringify(r.r.problems));
    const m = r.r.problems.find((x) => x.code === 'content-mismatch');
    assert.ok(m, JSON.stringify(r.r.problems));
    // the detail shows both hashes in Nix's base-32
    const n32 = (hex: string): string => nix32Encode(Buffer.from(hex, 'hex'));
    assert.equal(m.drv, drv.get('fod'));
    assert.ok(m.detail.includes(`attested NAR hash sha256:${n32('cd'.repeat(32))}`) && m.detail.includes(`NarHash sha256:${n32(real)}`), m.detail);
  });

  test('#10: equivocation — one key, two different claims for one resolved derivation — counts for nothing there', async () => {
    const t = traceOf(A, 'ia1');
    const st = JSON.parse(t.statement.toString('utf8')) as Json & { subject: { digest: { sha256: string } }[] };
    (st.subject[0] as { digest: { sha256: string } }).digest.sha256 = '11'.repeat(32);
    const cache = new FileCache(join(dir, 'equivocation'));
    await appendLines(cache, `traces/${t.rdrv_hash}`, [t.bundle, resign(A, st)]);
    const ia2 = traceOf(A, 'ia2');
    await appendLines(cache, `traces/${ia2.rdrv_hash}`, [ia2.bundle]);
    const r = await verify(drv.get('ia2') as string, policy('A', { A }), ['--cache', cache.url]);
    assert.equal(r.code, 1);
    const e = r.r.problems.find((p) => p.code === 'equivocation');
    assert.ok(
      e && e.drv === drv.get('ia1') && e.signer === 'A' && (e as { resolvedDrv?: string }).resolvedDrv?.includes(t.rdrv_hash),
      JSON.stringify(r.r.problems),
    );
    // with an honest second signer, 1-of-2 still verifies, on B's claim for ia1
    const withB = await verify(drv.get('ia2') as string, policy(one, { A, B }), ['--cache', cache.url, ...dbs(B)]);
    assert.equal(withB.code, 0, JSON.stringify(withB.r.problems));
    // the same claim re-signed with other unsigned-by-claim fields (time) is no equivocation
    const st2 = JSON.parse(t.statement.toString('utf8')) as Json & { predicate: { runDetails: { metadata: { finishedOn: string } } } };
    st2.predicate.runDetails.metadata.finishedOn = '2000-01-01T00:00:00Z';
    const again = new FileCache(join(dir, 'same-claim'));
    await appendLines(again, `traces/${t.rdrv_hash}`, [t.bundle, resign(A, st2)]);
    await appendLines(again, `traces/${ia2.rdrv_hash}`, [ia2.bundle]);
    assert.equal((await verify(drv.get('ia2') as string, policy('A', { A }), ['--cache', again.url])).code, 0);
  });

  test('#10: a duplicated key in the trust tree is refused at load, naming both positions', async () => {
    for (const [trust, want] of [
      [{ threshold: 2, of: ['A', 'A'] }, /trust\.of\[0\] and trust\.of\[1\] both name key "A"/],
      [{ threshold: 2, of: ['A', { threshold: 1, of: ['A', 'B'] }] }, /trust\.of\[0\] and trust\.of\[1\]\.of\[0\] both name key "A"/],
    ] as const) {
      const r = await run(VERIFY_CLI, [drv.get('agree3') as string, '--policy', policy(trust, { A, B }), ...dbs(A, B)]);
      assert.equal(r.code, 2, r.stdout);
      assert.match(r.stderr, want);
    }
  });

  test("#10: line order decides nothing; a dishonest signer's claims read first do not push the honest combination past the bound", async () => {
    // C (admitted) claims five made-up contents for agree1, whose paths sort before the real one,
    // and its lines come first. With maxResolutions 2 the honest resolution must still be tried.
    const a1 = traceOf(A, 'agree1');
    const cKey = secret(C);
    const lies: string[] = [];
    for (let i = 0; i < 5; i++) {
      const st = buildStatement({
        kind: 'ca',
        resolvedInputHash: a1.rdrv_hash,
        drvName: 'v-agree1',
        outputs: [
          { name: 'out', path: `/nix/store/${'0'.repeat(31)}${i}-v-agree1`, sha256: `${i}`.repeat(64), narSize: 1, declared: { hashAlgo: 'r:sha256' } },
        ],
        inputs: [],
        keyFingerprint: cKey.publicKey.fingerprint,
        versions: {},
        invocationId: `${i}`.repeat(32),
        finishedOn: new Date().toISOString(),
      });
      lies.push(createBundle(Buffer.from(JSON.stringify(st)), cKey));
    }
    const honest: [string, string][] = [];
    for (const h of [A, B]) {
      const db = new Database(h.dbFile, { readonly: true });
      for (const row of db.prepare("SELECT rdrv_hash, bundle FROM traces WHERE drv_name IN ('v-agree1', 'v-agree2', 'v-agree3')").all() as {
        rdrv_hash: string;
        bundle: string;
      }[])
        honest.push([row.rdrv_hash, row.bundle]);
      db.close();
    }
    const pol = join(dir, 'bounded-policy.json');
    writeFileSync(
      pol,
      JSON.stringify({
        keys: { A: { publicKey: A.keys.publicKey }, B: { publicKey: B.keys.publicKey }, C: { publicKey: C.keys.publicKey } },
        trust: { threshold: 2, of: ['A', 'B', 'C'] },
        maxResolutions: 2,
      }),
    );
    const verdicts: string[] = [];
    for (const [k, order] of [
      ['lies-first', (x: [string, string][]) => x],
      ['reversed', (x: [string, string][]) => [...x].reverse()],
      ['shuffled', (x: [string, string][]) => [...x].sort((p, q) => (p[1].slice(-20) < q[1].slice(-20) ? -1 : 1))],
    ] as const) {
      const cache = new FileCache(join(dir, `order-${k}`));
      const lines = order([...lies.map((l) => [a1.rdrv_hash, l] as [string, string]), ...honest]);
      for (const [h, l] of lines) await appendLines(cache, `traces/${h}`, [l]);
      const r = await verify(drv.get('agree3') as string, pol, ['--cache', cache.url]);
      assert.equal(r.code, 0, `${k}: ${JSON.stringify(r.r.problems)}`);
      // lastMile names each run's own cache directory
      verdicts.push(JSON.stringify({ ...r.r, entries: undefined, lastMile: undefined }));
    }
    assert.equal(new Set(verdicts).size, 1, 'the same verdict whatever the line order');
  });

  test('#10: 20,000 copies of one bundle with only the hint changed cost one check and end fast', async () => {
    const t = traceOf(A, 'ia1');
    const b = JSON.parse(t.bundle) as { verificationMaterial: { publicKey: { hint: string } }; dsseEnvelope: { signatures: { keyid: string }[] } };
    const replay = (i: number): string => {
      b.verificationMaterial.publicKey.hint = i.toString(16).padStart(16, '0');
      (b.dsseEnvelope.signatures[0] as { keyid: string }).keyid = i.toString(16).padStart(16, '0');
      return JSON.stringify(b);
    };
    const lines: string[] = [];
    for (let i = 0; i < 20_000; i++) lines.push(replay(i));
    lines.push(t.bundle);
    const cache = new FileCache(join(dir, 'replays'));
    // written directly, as a hostile cache would hold it: 32 MB is past what a publisher appends to (a writer's bound), not past what a reader takes
    mkdirSync(join(dir, 'replays', 'traces'), { recursive: true });
    writeFileSync(join(dir, 'replays', 'traces', t.rdrv_hash), `${lines.join('\n')}\n`);
    const started = Date.now();
    const r = await verify(drv.get('ia1') as string, policy('A', { A }), ['--cache', cache.url]);
    assert.equal(r.code, 0, JSON.stringify(r.r.problems.slice(0, 3)));
    assert.ok(Date.now() - started < 30_000, `${Date.now() - started} ms`);
    // the grouping itself, at the scale: 200,000 replays are one signed content
    const many = Array.from({ length: 200_000 }, (_, i) => replay(i));
    many.push(t.bundle);
    const groups = groupBySignedContent(
      new Map(many.map((l) => [l, cache.url])),
      new Set([secret(A).publicKey.fingerprint, secret(A).publicKey.sshFingerprint]),
      2,
    );
    assert.equal(groups.length, 1);
    assert.ok((groups[0] as string[]).includes(t.bundle), 'the variant whose hints name a known key is kept');
  });

  // --- failure codes and flags that only these tests reach through the CLI ---
  /** A's trace for `name`, edited and re-signed by `by` (default A), in a fresh cache with A's ia1/ia2 as they are. */
  const editedCache = async (label: string, name: string, edit: (st: Json) => void, by: DaemonHandle = A): Promise<string> => {
    const cache = new FileCache(join(dir, `codes-${label}`));
    for (const n of ['ia1', 'ia2']) {
      const t = traceOf(A, n);
      if (n === name) {
        const st = JSON.parse(t.statement.toString('utf8')) as Json;
        edit(st);
        await appendLines(cache, `traces/${t.rdrv_hash}`, [resign(by, st)]);
      } else await appendLines(cache, `traces/${t.rdrv_hash}`, [t.bundle]);
    }
    return cache.url;
  };
  type Subject = { name: string; annotations: { laut_storePath: string } };
  const problemAt = (r: Result, code: string, at: string, detail: RegExp): void => {
    assert.ok(
      r.problems.some((p) => p.code === code && p.drv === drv.get(at) && detail.test(p.detail)),
      `${code} at ${at}: ${JSON.stringify(r.problems)}`,
    );
  };

  test('output-mismatch: a statement of the wrong kind, with other output names, or another input-addressed path', async () => {
    const cases: [string, (st: Json) => void, RegExp][] = [
      [
        'kind',
        (st) => {
          ((st['predicate'] as Json)['buildDefinition'] as { internalParameters: Json }).internalParameters['derivationKind'] = 'ca';
        },
        /statement \(ca: out\) does not describe this ia derivation \(out\)/,
      ],
      [
        'names',
        (st) => {
          ((st['subject'] as Subject[])[0] as Subject).name = 'bin';
        },
        /statement \(ia: bin\) does not describe this ia derivation \(out\)/,
      ],
      [
        'path',
        (st) => {
          const s = (st['subject'] as Subject[])[0] as Subject;
          s.annotations.laut_storePath = s.annotations.laut_storePath.replace(/\/[0-9a-z]{32}-/, `/${'1'.repeat(32)}-`);
        },
        /output out claimed at \/nix\/store\/1{32}-v-ia1, derivation says \/nix\/store\//,
      ],
    ];
    for (const [label, edit, detail] of cases) {
      const r = await verify(drv.get('ia2') as string, policy('A', { A }), ['--cache', await editedCache(`om-${label}`, 'ia1', edit)]);
      assert.equal(r.code, 1, label);
      problemAt(r.r, 'output-mismatch', 'ia1', detail);
      problemAt(r.r, 'dependency-unsupported', 'ia2', /has no verified resolution/);
    }
  });

  test('builder-mismatch: a statement naming A as its builder, signed by B', async () => {
    const r = await verify(drv.get('ia1') as string, policy(one, { A, B }), ['--cache', await editedCache('bm', 'ia1', () => {}, B)]);
    assert.equal(r.code, 1);
    problemAt(r.r, 'builder-mismatch', 'ia1', /runDetails\.builder\.id urn:laut:builder:sha256:[0-9a-f]{64} is not the verifying key/);
  });

  test('input-missing for our build type: a statement that leaves out an input', async () => {
    const url = await editedCache('im', 'ia2', (st) => {
      ((st['predicate'] as Json)['buildDefinition'] as Json)['resolvedDependencies'] = [];
    });
    const r = await verify(drv.get('ia2') as string, policy('A', { A }), ['--cache', url]);
    assert.equal(r.code, 1);
    problemAt(r.r, 'input-missing', 'ia2', /-v-ia1/);
  });

  test('bound-hit through the CLI: 301 resolutions of one input, the default bound (256) and a policy bound (2)', async () => {
    // C claims 300 made-up contents for agree1; with no claim for agree2 in the cache, every
    // resolution tried fails, so the verdict reports the bound
    const a1 = traceOf(A, 'agree1');
    const cKey = secret(C);
    const nix32 = '0123456789abcdfghijklmnpqrsvwxyz';
    const lines = [a1.bundle];
    for (let i = 0; i < 300; i++) {
      const tag = `${nix32[i % 32]}${nix32[Math.floor(i / 32) % 32]}`;
      const st = buildStatement({
        kind: 'ca',
        resolvedInputHash: a1.rdrv_hash,
        drvName: 'v-agree1',
        outputs: [
          { name: 'out', path: `/nix/store/${'0'.repeat(30)}${tag}-v-agree1`, sha256: sha256HexOf(`lie ${i}`), narSize: 1, declared: { hashAlgo: 'r:sha256' } },
        ],
        inputs: [],
        keyFingerprint: cKey.publicKey.fingerprint,
        versions: {},
        invocationId: `${i}`.padStart(32, '0'),
        finishedOn: new Date().toISOString(),
      });
      lines.push(createBundle(Buffer.from(JSON.stringify(st)), cKey));
    }
    const cache = new FileCache(join(dir, 'bound'));
    await appendLines(cache, `traces/${a1.rdrv_hash}`, lines);
    const trust = { threshold: 1, of: ['A', 'C'] };
    const byDefault = await verify(drv.get('agree2') as string, policy(trust, { A, C }), ['--cache', cache.url]);
    assert.equal(byDefault.code, 1);
    problemAt(byDefault.r, 'bound-hit', 'agree2', /^301 combinations of input resolutions; 256 were tried/);
    const pol = join(dir, 'bound-2.json');
    writeFileSync(pol, JSON.stringify({ keys: { A: { publicKey: A.keys.publicKey }, C: { publicKey: C.keys.publicKey } }, trust, maxResolutions: 2 }));
    const two = await verify(drv.get('agree2') as string, pol, ['--cache', cache.url]);
    assert.equal(two.code, 1);
    problemAt(two.r, 'bound-hit', 'agree2', /^301 combinations of input resolutions; 2 were tried/);
  });

  test('targets: a .nix file with --attr, and an output path, verify as their derivation', async () => {
    const nixFile = join(dir, 'target.nix');
    // args: [verify.nix, '--argstr', 'salt', SALT, '--argstr', 'nondet', FILE, '--argstr', 'rfodHash', HASH]
    writeFileSync(
      nixFile,
      `import ${args[0]} { salt = ${JSON.stringify(args[3])}; nondet = ${JSON.stringify(args[6])}; rfodHash = ${JSON.stringify(args[9])}; }\n`,
    );
    // ia3: input-addressed, so trace-verify's own nix-instantiate needs no experimental feature
    const byDrv = await verify(drv.get('ia3') as string, policy('A', { A }), dbs(A));
    assert.equal(byDrv.code, 0, JSON.stringify(byDrv.r.problems));
    const byAttr = await verify(nixFile, policy('A', { A }), dbs(A), ['--attr', 'ia3']);
    assert.equal(byAttr.code, 0, JSON.stringify(byAttr.r.problems));
    assert.equal(byAttr.r.target, drv.get('ia3'));
    const out = (traceOf(A, 'ia3').outputs[0] as { path: string }).path;
    const byOut = await verify(out, policy('A', { A }), dbs(A));
    assert.equal(byOut.code, 0, JSON.stringify(byOut.r.problems));
    assert.equal(byOut.r.target, drv.get('ia3'));
    // an attribute that is not there is a usage error naming it
    assertRefused(await run(VERIFY_CLI, [nixFile, '--attr', 'no-such-attr', '--policy', policy('A', { A }), ...dbs(A)]), 2, /no-such-attr/, '--attr');
  });

  test('--nix-db, --at in closure mode, --max-object-bytes and --max-line-bytes', async () => {
    const target = drv.get('ia2') as string;
    const pol = policy('A', { A });
    // a Nix database that holds another NAR hash for ia1's output: the last mile reads it
    const o = traceOf(A, 'ia1').outputs[0] as { path: string; nar_hash: string };
    const fake = join(dir, 'fake-db.sqlite');
    // a consistent copy (Nix's database is in WAL mode: recent rows live in db.sqlite-wal)
    const live = new Database('/nix/var/nix/db/db.sqlite', { readonly: true });
    await live.backup(fake);
    live.close();
    const db = new Database(fake);
    const changed = db.prepare('UPDATE ValidPaths SET hash = ? WHERE path = ?').run(`sha256:${'ab'.repeat(32)}`, o.path);
    db.close();
    assert.equal(changed.changes, 1, 'ia1 is in the local store');
    const lied = await verify(target, pol, dbs(A), ['--nix-db', fake]);
    assert.equal(lied.code, 1);
    assert.ok(
      lied.r.problems.some((p) => p.code === 'content-mismatch' && p.detail.includes(o.path) && p.detail.includes(fake)),
      JSON.stringify(lied.r.problems),
    );
    // named explicitly, a database that is not there is an input error (only the default is optional)
    const missing = await run(VERIFY_CLI, [target, '--policy', pol, ...dbs(A), '--nix-db', join(dir, 'no-such.sqlite')]);
    assertRefused(missing, 2, /cannot open the Nix database \S*no-such\.sqlite read-only/, '--nix-db missing');
    // --at is accepted in closure mode and must be a real date
    const at = await verify(target, pol, dbs(A), ['--at', '2026-01-01T00:00:00Z']);
    assert.equal(at.code, 0, JSON.stringify(at.r.problems));
    assertRefused(await run(VERIFY_CLI, [target, '--policy', pol, ...dbs(A), '--at', '2026-13-45T99:00:00Z']), 2, /--at/, 'bad --at');
    // the read bounds, lowered below one real trace line
    const cache = new FileCache(join(dir, 'bounds'));
    for (const n of ['ia1', 'ia2']) await appendLines(cache, `traces/${traceOf(A, n).rdrv_hash}`, [traceOf(A, n).bundle]);
    const ob = await run(VERIFY_CLI, [target, '--policy', pol, '--cache', cache.url, '--max-object-bytes', '100']);
    assertRefused(ob, 2, /limit maxObjectBytes \(100\) exceeded.*--max-object-bytes/, '--max-object-bytes');
    const lb = await run(VERIFY_CLI, [target, '--policy', pol, '--cache', cache.url, '--max-line-bytes', '100']);
    assertRefused(lb, 2, /limit maxLineBytes \(100\) exceeded: line 1.*--max-line-bytes/, '--max-line-bytes');
    const ok = await verify(target, pol, ['--cache', cache.url], ['--max-object-bytes', '1000000', '--max-line-bytes', '100000']);
    assert.equal(ok.code, 0, JSON.stringify(ok.r.problems));
  });

  test('key-retired through the CLI: a retired key signs nothing that counts, even where the tree names it', async () => {
    const pol = join(dir, 'retired.json');
    writeFileSync(
      pol,
      JSON.stringify({
        keys: { A: { publicKey: A.keys.publicKey, status: 'retired' }, B: { publicKey: B.keys.publicKey } },
        trust: { threshold: 1, of: ['A', 'B'] },
      }),
    );
    const r = await verify(drv.get('ia1') as string, pol, dbs(A));
    assert.equal(r.code, 1);
    problemAt(r.r, 'key-retired', 'ia1', /./);
  });

  test('BUILDTRACE_NO_SODIUM: the OpenSSL Ed25519 path is the one taken, and reaches the same verdicts', async (t) => {
    // BUILDTRACE_ED25519_REPORT=1: trace-verify names on stderr how many checks each engine ran
    // (worker threads included). With the pool, pure Ed25519 runs inline in the workers, where
    // libsodium is used unless BUILDTRACE_NO_SODIUM=1.
    const engines = (stderr: string): { libsodium: number; openssl: number; opensslLibuv: number; noble: number } => {
      const m = /Ed25519 checks by engine: libsodium (\d+), openssl (\d+), openssl-libuv (\d+), noble (\d+)/.exec(stderr);
      assert.ok(m, stderr);
      return { libsodium: Number(m[1]), openssl: Number(m[2]), opensslLibuv: Number(m[3]), noble: Number(m[4]) };
    };
    // ia3's chain is signed pure Ed25519 (our IA build type), agree3's Ed25519ph (laut's #ca profile)
    const pure = [drv.get('ia3') as string, '--policy', policy(both), ...dbs(A, B), '--json'];
    const ph = [drv.get('agree3') as string, '--policy', policy(both), ...dbs(A, B), '--json'];
    const base = { ...process.env, BUILDTRACE_ED25519_REPORT: '1', BUILDTRACE_POOL: 'always' };
    const env = { ...base, BUILDTRACE_NO_SODIUM: '1' };
    const checked = async (args: string[], e: NodeJS.ProcessEnv): Promise<ReturnType<typeof engines>> => {
      const r = await run(VERIFY_CLI, args, { env: e });
      assert.equal(r.code, 0, r.stdout);
      return engines(r.stderr);
    };
    // 3 derivations x 2 signers each time
    assert.deepEqual(await checked(pure, env), { libsodium: 0, openssl: 6, opensslLibuv: 0, noble: 0 });
    assert.deepEqual(await checked(ph, env), { libsodium: 0, openssl: 0, opensslLibuv: 0, noble: 6 });
    // the control: without the variable, the same runs take libsodium (sodium-native is an optional dependency)
    let sodiumInstalled = true;
    try {
      createRequire(import.meta.url)('sodium-native');
    } catch {
      sodiumInstalled = false;
    }
    const withSodium = sodiumInstalled ? { libsodium: 6, openssl: 0, opensslLibuv: 0, noble: 0 } : undefined;
    if (withSodium) {
      assert.deepEqual(await checked(pure, base), withSodium);
      assert.deepEqual(await checked(ph, base), withSodium);
    } else t.diagnostic('sodium-native is not installed here: no libsodium control run');
    // a bad signature is refused by OpenSSL alone
    const cache = new FileCache(join(dir, 'no-sodium'));
    const tr = traceOf(A, 'ia1');
    const b = JSON.parse(tr.bundle) as { dsseEnvelope: { signatures: { sig: string }[] } };
    const sig = Buffer.from((b.dsseEnvelope.signatures[0] as { sig: string }).sig, 'base64');
    sig[5] = (sig[5] as number) ^ 1;
    (b.dsseEnvelope.signatures[0] as { sig: string }).sig = sig.toString('base64');
    await appendLines(cache, `traces/${tr.rdrv_hash}`, [JSON.stringify(b)]);
    const bad = await run(VERIFY_CLI, [drv.get('ia1') as string, '--policy', policy('A', { A }), '--cache', cache.url, '--json'], { env });
    assert.equal(bad.code, 1, bad.stdout);
    assert.ok(
      (JSON.parse(bad.stdout) as Result).problems.some((x) => x.code === 'signature-invalid'),
      bad.stdout,
    );
    // both schemes our build type allows are tried, neither by libsodium
    assert.deepEqual(engines(bad.stderr), { libsodium: 0, openssl: 1, opensslLibuv: 0, noble: 1 }, bad.stderr);
  });

  test('TEE-attested keys: accepted evidence; a debug guest, another key, or expired endorsement are refused', async () => {
    const platform = createSimulatedPlatform();
    const roots = join(dir, 'sim-roots');
    mkdirSync(roots, { recursive: true });
    writeFileSync(join(roots, 'ark.pem'), pem(platform.ark));
    writeFileSync(join(roots, 'ask.pem'), pem(platform.ask));
    const aKey = parseSecretKey(readFileSync(A.keys.secretFile, 'utf8'));
    const bKey = parseSecretKey(readFileSync(B.keys.secretFile, 'utf8'));
    const evidence = async (name: string, bindKey: Uint8Array, opts: { debug?: boolean } = {}): Promise<string> => {
      const cache = new FileCache(join(dir, `tee-${name}`));
      const preimage = keyAttestationPreimage(bindKey, Buffer.alloc(32, 9));
      const line = evidenceToJson({
        kind: 'key',
        keyFingerprint: aKey.publicKey.fingerprint,
        format: 'sev-snp',
        simulated: true,
        collectedAt: new Date().toISOString(),
        report: platform.report(reportDataFor(preimage), opts),
        preimage,
        certs: [{ role: 'vcek', der: platform.vcek }],
      });
      await appendLines(cache, `buildtrace/keys/${aKey.publicKey.fingerprint}.jsonl`, [line]);
      return cache.url;
    };
    const teePolicy = (p: Record<string, unknown> = {}) =>
      policy('A', { A: { publicKey: A.keys.publicKey, tee: { roots, policy: { anyMeasurement: true, anyTcb: true, ...p } } } });
    const target = drv.get('agree3') as string;

    const good = await verify(target, teePolicy(), [...dbs(A), '--cache', await evidence('good', aKey.publicKey.raw)]);
    assert.equal(good.code, 0, JSON.stringify(good.r));
    assert.equal(good.r.keyStatus['A']?.admitted, true);

    const debug = await verify(target, teePolicy(), [...dbs(A), '--cache', await evidence('debug', aKey.publicKey.raw, { debug: true })]);
    assert.equal(debug.code, 1);
    assert.ok(debug.r.problems.some((p) => p.code === 'tee-evidence-failed' && p.drv === drv.get('agree1') && /policy\.debug/.test(p.detail)));

    const other = await verify(target, teePolicy(), [...dbs(A), '--cache', await evidence('other', bKey.publicKey.raw)]);
    assert.equal(other.code, 1);
    assert.match(other.r.keyStatus['A']?.detail ?? '', /another key/);

    const late = await verify(target, teePolicy({ verificationTime: '2100-01-01T00:00:00Z' }), [
      ...dbs(A),
      '--cache',
      await evidence('late', aKey.publicKey.raw),
    ]);
    assert.equal(late.code, 1);
    assert.match(late.r.keyStatus['A']?.detail ?? '', /validity/);

    const noEvidence = await verify(target, teePolicy(), dbs(A));
    assert.equal(noEvidence.code, 1);
    assert.match(noEvidence.r.keyStatus['A']?.detail ?? '', /no key attestation evidence/);
  });

  test('bad policies and usage are exit 2 with the field named', async () => {
    const f = join(dir, 'bad-policy.json');
    writeFileSync(f, JSON.stringify({ keys: { A: { publicKey: A.keys.publicKey } }, trust: { threshold: 3, of: ['A'] } }));
    const r = await run(VERIFY_CLI, [drv.get('agree3') as string, '--policy', f, '--db', A.dbFile]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /threshold 3 is more than its 1 members/);
    writeFileSync(f, JSON.stringify({ keys: { A: { publicKey: A.keys.publicKey }, A2: { publicKey: A.keys.publicKey } }, trust: 'A' }));
    assertRefused(await run(VERIFY_CLI, [drv.get('agree3') as string, '--policy', f, '--db', A.dbFile]), 2, /same public key/, 'one key twice');
    writeFileSync(f, JSON.stringify({ keys: {}, trust: 'A', extra: 1 }));
    // both schema errors are named, each with its field
    const extra = await run(VERIFY_CLI, [drv.get('agree3') as string, '--policy', f, '--db', A.dbFile]);
    assertRefused(extra, 2, /\(top level\): unknown field "extra"/, 'unknown field');
    assert.match(extra.stderr, /keys: must NOT have fewer than 1 properties/);
    const nosrc = await run(VERIFY_CLI, [drv.get('agree3') as string, '--policy', policy('A', { A })]);
    assertRefused(nosrc, 2, 'give at least one --cache URL or --db FILE', 'no source');
  });
});
