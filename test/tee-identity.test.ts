// ci: nix (runs on every Nix: the host and the trixie and sid chroots; see scripts/run-tests.sh)
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { must, nixBuildWithHook, nixEnv, run, salt, startDaemon, tempDir, VERIFY_CLI, type DaemonHandle } from './helpers.js';
import { createHash, X509Certificate } from 'node:crypto';
import { appendLines } from '../src/cache/backend.js';
import { FileCache } from '../src/cache/file-cache.js';
import { parsePublicKey } from '../src/nix/nix-key.js';
import { keyAttestationPreimage, reportDataFor } from '../src/tee/binding.js';
import { subjectDer } from '../src/tee/crl.js';
import { createSimulatedPlatform, pem } from '../src/tee/simulated.js';
import { evidenceToJson } from '../src/verify/sources.js';
import { makeAmdCrl } from './tee-tdx-fixture.js';

const SIM_MEASUREMENT = createHash('sha384').update('buildtrace simulated launch measurement').digest('hex');
const SIM_POLICY = { snp: { measurements: [SIM_MEASUREMENT], minimumTcb: { bootloader: 4, snp: 22, microcode: 213 }, vmpl: 0 } };

interface Result {
  verified: boolean;
  signers: string[];
  problems: { drv: string; code: string; detail: string }[];
  keyStatus: Record<string, { admitted: boolean; detail: string }>;
}

/**
 * Acceptance for #13: a TEE builder (simulated) makes a new key at every start; a policy
 * that admits its measurement, with no public key, verifies traces from both boots and counts
 * all of them as one signer.
 */
test('identity by measurement: keys from two boots are one signer; 2-of-2 with another builder needs the other builder', async () => {
  const dir = tempDir('tee-identity-');
  const s = salt();
  const expr = `let dep = derivation { name = "tee-dep-${s}"; system = builtins.currentSystem; builder = "/bin/sh"; args = ["-c" "echo dep ${s} > $out"]; };
    in derivation { name = "tee-top-${s}"; system = builtins.currentSystem; builder = "/bin/sh"; args = ["-c" "read x < \${dep}; echo top $x > $out"]; }`;
  const staging = join(dir, 'staging');
  mkdirSync(staging);
  const b = await nixBuildWithHook(staging, ['-E', expr]);
  assert.equal(b.code, 0, b.stderr);
  const top = (await must('nix-instantiate', ['-E', expr], { env: nixEnv() })).stdout.trim();
  const records = readdirSync(staging);
  assert.ok(records.length >= 2, 'both derivations were built and recorded');
  let n = 0;
  const feed = async (d: DaemonHandle): Promise<void> => {
    for (const f of records) copyFileSync(join(staging, f), join(d.spool, `${n++}-${f}`));
    const r = await d.cli(['push', '--wait']);
    assert.equal(r.code, 0, r.stderr);
  };

  const cacheT = join(dir, 'cache-tee');
  const cacheB = join(dir, 'cache-b');
  const T = await startDaemon({
    dir: join(dir, 'tee'),
    extraConfig: {
      signingKeyFile: undefined,
      tee: { provider: 'simulated', allowSimulated: true, keyName: 'tee-builder' },
      caches: [{ url: `file://${cacheT}` }],
    },
  });
  const B = await startDaemon({ dir: join(dir, 'b'), keyName: 'builder-b', extraConfig: { caches: [{ url: `file://${cacheB}` }] } });
  try {
    // boot 1, then boot 2 (a fresh key, a fresh simulated platform with the same measurement)
    await feed(T);
    assert.equal(await T.stop(), 0);
    await T.restart();
    await feed(T);
    await feed(B);
    const db = new Database(T.dbFile, { readonly: true });
    const keys = db.prepare("SELECT DISTINCT key_fp FROM evidence WHERE kind = 'key'").all() as { key_fp: string }[];
    const perDrv = db.prepare('SELECT rdrv_hash, COUNT(DISTINCT key_fp) AS n FROM traces GROUP BY rdrv_hash').all() as { n: number }[];
    db.close();
    assert.ok(perDrv.length >= 2 && perDrv.every((r) => r.n === 2), "every derivation is signed by both boots' keys");
    assert.equal(keys.length, 2, 'two boots, two keys, two key attestations');
    assert.ok(readdirSync(join(cacheT, 'buildtrace', 'keys')).length === 2);

    const roots = join(T.dir, 'state', 'simulated-tee', 'roots');
    const policy = (keysJson: Record<string, unknown>, trust: unknown): string => {
      const f = join(dir, `policy-${n++}.json`);
      writeFileSync(f, JSON.stringify({ keys: keysJson, trust }));
      return f;
    };
    const verify = async (pol: string, caches: string[]): Promise<{ code: number; r: Result }> => {
      const p = await run(VERIFY_CLI, [top, '--policy', pol, ...caches.flatMap((c) => ['--cache', `file://${c}`]), '--json']);
      assert.ok(p.code === 0 || p.code === 1, `exit ${p.code}: ${p.stderr}`);
      const r = JSON.parse(p.stdout) as Result;
      // a refusal always says why, with a failure code
      if (p.code === 1) assert.ok(r.problems.length > 0, p.stdout);
      return { code: p.code, r };
    };
    const tee = { tee: { roots, policy: SIM_POLICY } };

    // no public key: every key whose attestation shows the measurement is "tee"
    const alone = await verify(policy({ tee }, 'tee'), [cacheT]);
    assert.equal(alone.code, 0, JSON.stringify(alone.r.problems));
    assert.deepEqual(alone.r.signers, ['tee']);
    assert.match(alone.r.keyStatus['tee']?.detail ?? '', /2 key\(s\) admitted/);

    // one identity, however many keys: 2-of-2 with B is not met by two boots of the TEE builder
    const both = { threshold: 2, of: ['tee', 'B'] };
    const pubB = B.keys.publicKey;
    const withoutB = await verify(policy({ tee, B: { publicKey: pubB } }, both), [cacheT]);
    assert.equal(withoutB.code, 1, 'two TEE keys are one signer');
    assert.ok(
      withoutB.r.problems.some((p) => p.code === 'threshold-not-met'),
      JSON.stringify(withoutB.r.problems),
    );
    const withB = await verify(policy({ tee, B: { publicKey: pubB } }, both), [cacheT, cacheB]);
    assert.equal(withB.code, 0, JSON.stringify(withB.r.problems));
    assert.deepEqual([...withB.r.signers].sort(), ['B', 'tee']);

    // another measurement admits none of these keys
    const otherImage = await verify(
      policy({ tee: { tee: { roots, policy: { ...SIM_POLICY, snp: { ...SIM_POLICY.snp, measurements: ['00'.repeat(48)] } } } } }, 'tee'),
      [cacheT],
    );
    assert.equal(otherImage.code, 1);
    assert.ok(
      otherImage.r.problems.some((p) => p.code === 'key-not-admitted' && /not admitted by measurement: .*policy\.measurement/.test(p.detail)),
      JSON.stringify(otherImage.r.problems),
    );
    // the real AMD roots admit none either
    const realRoots = await verify(policy({ tee: { tee: { roots: join(process.cwd(), 'test', 'vectors', 'tee', 'amd'), policy: SIM_POLICY } } }, 'tee'), [
      cacheT,
    ]);
    assert.equal(realRoots.code, 1);
    assert.ok(
      realRoots.r.problems.some((p) => p.code === 'key-not-admitted' && /not admitted by measurement: .*chain/.test(p.detail)),
      JSON.stringify(realRoots.r.problems),
    );

    // per-trace evidence required, but this daemon does not attest each trace
    const perTrace = await verify(policy({ tee: { tee: { roots, policy: SIM_POLICY, requirePerTraceEvidence: true } } }, 'tee'), [cacheT]);
    assert.equal(perTrace.code, 1);
    assert.ok(perTrace.r.problems.some((p) => p.code === 'tee-evidence-failed' && /per-trace evidence/.test(p.detail)));
    // a measured entry whose evidence lookup cannot find anything for B's key does not admit B
    const onlyB = await verify(policy({ tee }, 'tee'), [cacheB]);
    assert.equal(onlyB.code, 1);
    assert.ok(
      onlyB.r.problems.some((p) => p.code === 'key-not-admitted' && /no source has a key attestation/.test(p.detail)),
      JSON.stringify(onlyB.r.problems),
    );
  } finally {
    await T.stop();
    await B.stop();
  }
});

test('identity by measurement: per-trace evidence, when required, is checked against the statement', async () => {
  const dir = tempDir('tee-pertrace-');
  const s = salt();
  const expr = `derivation { name = "tee-pt-${s}"; system = builtins.currentSystem; builder = "/bin/sh"; args = ["-c" "echo ${s} > $out"]; }`;
  const cache = join(dir, 'cache');
  const T = await startDaemon({
    dir: join(dir, 'tee'),
    extraConfig: { signingKeyFile: undefined, tee: { provider: 'simulated', allowSimulated: true, perTrace: true }, caches: [{ url: `file://${cache}` }] },
  });
  try {
    const b = await nixBuildWithHook(T.spool, ['-E', expr]);
    assert.equal(b.code, 0, b.stderr);
    assert.equal((await T.cli(['push', '--wait'])).code, 0);
    const drv = (await must('nix-instantiate', ['-E', expr], { env: nixEnv() })).stdout.trim();
    const f = join(dir, 'policy.json');
    writeFileSync(
      f,
      JSON.stringify({
        keys: { tee: { tee: { roots: join(T.dir, 'state', 'simulated-tee', 'roots'), policy: SIM_POLICY, requirePerTraceEvidence: true } } },
        trust: 'tee',
      }),
    );
    const ok = await run(VERIFY_CLI, [drv, '--policy', f, '--cache', `file://${cache}`]);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    // the per-trace evidence gone: refused
    const { rmSync } = await import('node:fs');
    rmSync(join(cache, 'buildtrace', 'trace-evidence'), { recursive: true });
    const gone = await run(VERIFY_CLI, [drv, '--policy', f, '--cache', `file://${cache}`, '--json']);
    assert.equal(gone.code, 1);
    assert.match(gone.stdout, /per-trace evidence/);
    // the daemon's database is a source too: key and per-trace evidence found there
    const fromDb = await run(VERIFY_CLI, [drv, '--policy', f, '--db', T.dbFile]);
    assert.equal(fromDb.code, 0, fromDb.stdout + fromDb.stderr);
  } finally {
    await T.stop();
  }
});

test('trust policy tee.crl: a key whose SEV-SNP chain has a revoked ASK is not admitted', async () => {
  const dir = tempDir('tee-crl-');
  const A = await startDaemon({ dir: join(dir, 'a'), keyName: 'crl-a' });
  try {
    const s = salt();
    const expr = `derivation { name = "tee-crl-${s}"; system = builtins.currentSystem; builder = "/bin/sh"; args = ["-c" "echo ${s} > $out"]; }`;
    const b = await nixBuildWithHook(A.spool, ['-E', expr]);
    assert.equal(b.code, 0, b.stderr);
    assert.equal((await A.cli(['push', '--wait'])).code, 0);
    const drv = (await must('nix-instantiate', ['-E', expr], { env: nixEnv() })).stdout.trim();
    // key attestation for A's key from a simulated platform made here (so the test can sign its CRLs)
    const p = createSimulatedPlatform();
    const roots = join(dir, 'roots');
    mkdirSync(roots);
    writeFileSync(join(roots, 'ark.pem'), pem(p.ark));
    writeFileSync(join(roots, 'ask.pem'), pem(p.ask));
    const key = parsePublicKey(A.keys.publicKey);
    const preimage = keyAttestationPreimage(key.raw, Buffer.alloc(32, 7));
    const cache = new FileCache(join(dir, 'evidence-cache'));
    await appendLines(cache, `buildtrace/keys/${key.fingerprint}.jsonl`, [
      evidenceToJson({
        kind: 'key',
        keyFingerprint: key.fingerprint,
        format: 'sev-snp',
        simulated: true,
        collectedAt: new Date().toISOString(),
        report: p.report(reportDataFor(preimage)),
        preimage,
        certs: [{ role: 'vcek', der: p.vcek }],
      }),
    ]);
    const arkName = subjectDer(new X509Certificate(p.ark));
    const window = [new Date(Date.now() - 86_400_000), new Date(Date.now() + 86_400_000)] as const;
    const verifyWith = async (revoked: string[]): Promise<{ code: number; r: Result }> => {
      const crl = join(dir, `crl-${revoked.length}.der`);
      writeFileSync(crl, makeAmdCrl(arkName, p.arkKey, revoked, ...window));
      const f = join(dir, `policy-${revoked.length}.json`);
      writeFileSync(
        f,
        JSON.stringify({ keys: { A: { publicKey: A.keys.publicKey, tee: { roots, crl, policy: { anyMeasurement: true, anyTcb: true } } } }, trust: 'A' }),
      );
      const r = await run(VERIFY_CLI, [drv, '--policy', f, '--db', A.dbFile, '--cache', cache.url, '--json']);
      return { code: r.code, r: JSON.parse(r.stdout) as Result };
    };
    const clean = await verifyWith([]);
    assert.equal(clean.code, 0, JSON.stringify(clean.r.keyStatus));
    const revoked = await verifyWith([new X509Certificate(p.ask).serialNumber]);
    assert.equal(revoked.code, 1);
    assert.match(revoked.r.keyStatus['A']?.detail ?? '', /crl: SEV-Milan serial .* is revoked/);
  } finally {
    await A.stop();
  }
});
