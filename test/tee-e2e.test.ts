import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { parsePublicKey } from '../src/nix/nix-key.js';
import { TRACE_ATTESTATION_DOMAIN } from '../src/tee/binding.js';
import { checkBundle } from '../src/trace/bundle.js';
import { DAEMON_CLI, nixBuildWithHook, nixEnv, nixKeyPair, ROOT, run, salt, startDaemon, tempDir, VERIFY_CLI } from './helpers.js';

const AMD = join(ROOT, 'test', 'vectors', 'tee', 'amd');

test('simulated TEE end to end: a real build, an attested key, evidence accepted under simulated roots only', async () => {
  const cacheDir = join(tempDir('tee-cache-'), 'cache');
  const d = await startDaemon({ extraConfig: { tee: { provider: 'simulated', allowSimulated: true, perTrace: true }, caches: [{ url: `file://${cacheDir}` }] } });
  try {
    assert.match(d.stderr(), /WARNING: SIMULATED TEE/);
    const s = salt();
    const expr = `derivation { name = "attested-${s}"; system = builtins.currentSystem; builder = "/bin/sh"; args = ["-c" "echo ${s} > $out"]; }`;
    const b = await nixBuildWithHook(d.spool, ['-E', expr]);
    assert.equal(b.code, 0, b.stderr);
    assert.equal((await d.cli(['push', '--wait'])).code, 0);
    const st = JSON.parse((await d.cli(['status', '--json'])).stdout) as { tee: { provider: string; keyEvidence: { simulated: boolean } } };
    assert.equal(st.tee.provider, 'simulated');
    assert.equal(st.tee.keyEvidence.simulated, true);
    assert.match((await d.cli(['status'])).stdout, /SIMULATED: proves nothing/);

    const out = join(d.dir, 'evidence');
    const ev = await d.cli(['evidence', '--out', out, '--json']);
    assert.equal(ev.code, 0, ev.stderr);
    const items = (JSON.parse(ev.stdout) as { evidence: { id: number; kind: string; simulated: boolean; traceId: number | null }[] }).evidence;
    const keyEv = items.find((e) => e.kind === 'key');
    const traceEv = items.find((e) => e.kind === 'trace');
    assert.ok(keyEv && traceEv, 'one key attestation and one trace attestation');
    assert.ok(items.every((e) => e.simulated));
    const kdir = join(out, String(keyEv.id));
    assert.deepEqual(readdirSync(kdir).sort(), ['ark.der', 'ask.der', 'evidence.json', 'preimage.bin', 'report.bin', 'vcek.der']);

    const roots = join(d.dir, 'state', 'simulated-tee', 'roots');
    const verify = (args: string[]) => run(VERIFY_CLI, ['evidence', '--json', ...args]);
    const base = ['--report', join(kdir, 'report.bin'), '--vcek', join(kdir, 'vcek.der'), '--preimage', join(kdir, 'preimage.bin')];

    const ok = await verify([...base, '--roots', roots, '--key', d.keys.publicFile]);
    assert.equal(ok.code, 0, ok.stdout);
    const okv = JSON.parse(ok.stdout) as { steps: { step: string; ok: boolean | null }[]; fields: Record<string, unknown> };
    assert.equal(okv.steps.find((x) => x.step === 'report-data')?.ok, true);
    assert.equal(okv.fields['simulated_marker'], true);

    // the real AMD roots refuse it, even though the roots that came with the evidence (ark.der) are right there
    const real = await verify([...base, '--roots', AMD, '--key', d.keys.publicFile]);
    assert.equal(real.code, 1);
    assert.equal((JSON.parse(real.stdout) as { steps: { step: string; ok: boolean }[] }).steps.find((x) => x.step === 'chain')?.ok, false);
    const withShipped = await verify([...base, '--roots', AMD]);
    assert.equal(withShipped.code, 1);

    // evidence for another key
    const other = await nixKeyPair(tempDir(), 'other-attested');
    const wrongKey = await verify([...base, '--roots', roots, '--key', other.publicFile]);
    assert.equal(wrongKey.code, 1);
    assert.match(wrongKey.stderr, /binds another key/);

    // a preimage that does not match REPORT_DATA
    const bad = join(tempDir(), 'preimage.bin');
    const pre = readFileSync(join(kdir, 'preimage.bin'));
    pre[pre.length - 1] = (pre[pre.length - 1] as number) ^ 1;
    writeFileSync(bad, pre);
    const mism = await verify(['--report', join(kdir, 'report.bin'), '--vcek', join(kdir, 'vcek.der'), '--preimage', bad, '--roots', roots]);
    assert.equal(mism.code, 1);

    // per-trace evidence binds the exact statement bytes of the trace, whose bundle verifies under the attested key
    const db = new Database(d.dbFile, { readonly: true });
    const row = db.prepare('SELECT statement, bundle FROM traces WHERE id = ?').get(traceEv.traceId) as { statement: Buffer; bundle: string };
    db.close();
    const tdir = join(out, String(traceEv.id));
    const tpre = readFileSync(join(tdir, 'preimage.bin'));
    assert.ok(tpre.equals(Buffer.concat([Buffer.from(TRACE_ATTESTATION_DOMAIN), createHash('sha256').update(row.statement).digest()])));
    const tv = await verify(['--report', join(tdir, 'report.bin'), '--vcek', join(tdir, 'vcek.der'), '--preimage', join(tdir, 'preimage.bin'), '--roots', roots]);
    assert.equal(tv.code, 0);
    assert.ok(checkBundle(row.bundle, [parsePublicKey(d.keys.publicKey)]).ok);

    // published beside the traces: a consumer whose policy requires TEE evidence for this key
    // finds it in the cache and accepts the build; under the real AMD roots it does not
    const drv = (await run('nix-instantiate', ['-E', expr], { env: nixEnv() })).stdout.trim();
    assert.ok(readdirSync(join(cacheDir, 'buildtrace', 'keys')).some((f) => f.endsWith('.jsonl')));
    const pol = (r: string): string => {
      const f = join(tempDir(), 'policy.json');
      writeFileSync(f, JSON.stringify({ keys: { b: { publicKey: d.keys.publicKey, tee: { roots: r } } }, trust: 'b' }));
      return f;
    };
    const accepted = await run(VERIFY_CLI, [drv, '--policy', pol(roots), '--cache', `file://${cacheDir}`]);
    assert.equal(accepted.code, 0, accepted.stdout + accepted.stderr);
    const refused = await run(VERIFY_CLI, [drv, '--policy', pol(AMD), '--cache', `file://${cacheDir}`, '--json']);
    assert.equal(refused.code, 1);
    assert.ok((JSON.parse(refused.stdout) as { problems: { code: string }[] }).problems.some((p) => p.code === 'tee-evidence-failed'));
  } finally {
    assert.equal(await d.stop(), 0);
  }
});

test('the simulated provider cannot be enabled by accident', async () => {
  const dir = tempDir();
  const k = await nixKeyPair(dir, 'sim-refused');
  mkdirSync(join(dir, 'spool'));
  const cfg = join(dir, 'config.json');
  writeFileSync(cfg, JSON.stringify({ signingKeyFile: k.secretFile, spoolDir: join(dir, 'spool'), stateDir: join(dir, 'state'), socket: join(dir, 's.sock'), tee: { provider: 'simulated' } }));
  const r = await run(DAEMON_CLI, ['run', '--config', cfg]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /allowSimulated/);
});

test('a TEE provider that is not there stops the daemon from starting, with the reason', async () => {
  const dir = tempDir();
  const k = await nixKeyPair(dir, 'no-tee');
  const cfg = join(dir, 'config.json');
  writeFileSync(cfg, JSON.stringify({ signingKeyFile: k.secretFile, spoolDir: join(dir, 'spool'), stateDir: join(dir, 'state'), socket: join(dir, 's.sock'), tee: { provider: 'sev-snp', configfsPath: join(dir, 'no-configfs') } }));
  const r = await run(DAEMON_CLI, ['run', '--config', cfg]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /configfs-tsm is not available/);
});
