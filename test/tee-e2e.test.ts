// ci: nix (runs on every Nix: the host and the trixie and sid chroots; see scripts/run-tests.sh)
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { formatPublicKey, parsePublicKey, publicKeyFromRaw } from '../src/nix/nix-key.js';
import { parsePreimage, TRACE_ATTESTATION_DOMAIN } from '../src/tee/binding.js';
import { checkBundle } from '../src/trace/bundle.js';
import { DAEMON_CLI, nixBuildWithHook, nixEnv, nixKeyPair, ROOT, run, salt, startDaemon, tempDir, VERIFY_CLI } from './helpers.js';

const AMD = join(ROOT, 'test', 'vectors', 'tee', 'amd');

const SIM_MEASUREMENT = createHash('sha384').update('buildtrace simulated launch measurement').digest('hex');
export const SIM_POLICY = { snp: { measurements: [SIM_MEASUREMENT], minimumTcb: { bootloader: 4, snp: 22, microcode: 213 }, vmpl: 0 } };

test('simulated TEE end to end: a real build, a key born in the guest, evidence accepted under simulated roots only', async () => {
  const cacheDir = join(tempDir('tee-cache-'), 'cache');
  // TEE mode: no key file (JSON drops the undefined); the daemon makes its key at start-up
  const d = await startDaemon({
    extraConfig: {
      signingKeyFile: undefined,
      tee: { provider: 'simulated', allowSimulated: true, perTrace: true, keyName: 'sim-tee' },
      caches: [{ url: `file://${cacheDir}` }],
    },
  });
  try {
    assert.match(d.stderr(), /WARNING: SIMULATED TEE/);
    assert.match(d.stderr(), /generated in the guest/);
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
    // the certificates that came with the evidence are kept apart from anything like a roots dir
    assert.deepEqual(readdirSync(kdir).sort(), ['evidence-certs', 'evidence.json', 'preimage.bin', 'report.bin']);
    assert.deepEqual(readdirSync(join(kdir, 'evidence-certs')).sort(), ['ark.der', 'ask.der', 'vcek.der']);
    // the generated key: its public half is in the preimage, its fingerprint in status
    const bound = parsePreimage(readFileSync(join(kdir, 'preimage.bin')));
    assert.equal(bound.kind, 'key');
    const genKey = publicKeyFromRaw('sim-tee', bound.kind === 'key' ? bound.publicKey : new Uint8Array());
    assert.equal((JSON.parse((await d.cli(['status', '--json'])).stdout) as { key: { fingerprint: string } }).key.fingerprint, genKey.fingerprint);
    assert.notEqual(genKey.fingerprint, parsePublicKey(d.keys.publicKey).fingerprint, 'the key file the helper made is not used');
    const genPub = join(tempDir(), 'gen.pub');
    writeFileSync(genPub, formatPublicKey(genKey));

    const roots = join(d.dir, 'state', 'simulated-tee', 'roots');
    const verify = (args: string[]) => run(VERIFY_CLI, ['evidence', '--json', ...args]);
    const base = ['--report', join(kdir, 'report.bin'), '--vcek', join(kdir, 'evidence-certs', 'vcek.der'), '--preimage', join(kdir, 'preimage.bin')];

    const ok = await verify([...base, '--roots', roots, '--key', genPub]);
    assert.equal(ok.code, 0, ok.stdout);
    const okv = JSON.parse(ok.stdout) as { steps: { step: string; ok: boolean | null }[]; fields: Record<string, unknown> };
    assert.equal(okv.steps.find((x) => x.step === 'report-data')?.ok, true);
    assert.equal(okv.fields['simulated_marker'], true);

    // the real AMD roots refuse it, even though the roots that came with the evidence (ark.der) are right there
    const real = await verify([...base, '--roots', AMD, '--key', genPub]);
    assert.equal(real.code, 1);
    assert.equal((JSON.parse(real.stdout) as { steps: { step: string; ok: boolean }[] }).steps.find((x) => x.step === 'chain')?.ok, false);
    // pointing --roots at the evidence dump (which holds the certificates that came with it) is refused
    for (const r of [out, kdir, join(kdir, 'evidence-certs')]) {
      const shipped = await verify([...base, '--roots', r]);
      assert.equal(shipped.code, 2, r);
      assert.match(shipped.stderr, /not a directory of pinned roots/);
    }

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
    const mism = await verify(['--report', join(kdir, 'report.bin'), '--vcek', join(kdir, 'evidence-certs', 'vcek.der'), '--preimage', bad, '--roots', roots]);
    assert.equal(mism.code, 1);
    const mismSteps = (JSON.parse(mism.stdout) as { steps: { step: string; ok: boolean | null }[] }).steps;
    assert.equal(mismSteps.find((x) => x.step === 'report-data')?.ok, false, mism.stdout);
    assert.deepEqual(
      mismSteps.filter((x) => x.ok === false).map((x) => x.step),
      ['report-data'],
      'only the binding fails',
    );

    // per-trace evidence binds the exact statement bytes of the trace, whose bundle verifies under the attested key
    const db = new Database(d.dbFile, { readonly: true });
    const row = db.prepare('SELECT statement, bundle FROM traces WHERE id = ?').get(traceEv.traceId) as { statement: Buffer; bundle: string };
    db.close();
    const tdir = join(out, String(traceEv.id));
    const tpre = readFileSync(join(tdir, 'preimage.bin'));
    assert.ok(tpre.equals(Buffer.concat([Buffer.from(TRACE_ATTESTATION_DOMAIN), createHash('sha256').update(row.statement).digest()])));
    const tv = await verify([
      '--report',
      join(tdir, 'report.bin'),
      '--vcek',
      join(tdir, 'evidence-certs', 'vcek.der'),
      '--preimage',
      join(tdir, 'preimage.bin'),
      '--roots',
      roots,
    ]);
    assert.equal(tv.code, 0);
    assert.ok(checkBundle(row.bundle, [genKey]).ok);
    assert.equal(checkBundle(row.bundle, [parsePublicKey(d.keys.publicKey)]).ok, false);

    // published beside the traces: a consumer whose policy requires TEE evidence for this key
    // finds it in the cache and accepts the build; under the real AMD roots it does not
    const drv = (await run('nix-instantiate', ['-E', expr], { env: nixEnv() })).stdout.trim();
    assert.ok(readdirSync(join(cacheDir, 'buildtrace', 'keys')).some((f) => f.endsWith('.jsonl')));
    const pol = (r: string, teePolicy: unknown = SIM_POLICY): string => {
      const f = join(tempDir(), 'policy.json');
      writeFileSync(f, JSON.stringify({ keys: { b: { publicKey: formatPublicKey(genKey), tee: { roots: r, policy: teePolicy } } }, trust: 'b' }));
      return f;
    };
    // a tee entry that names no measurements is refused at policy load
    const lax = await run(VERIFY_CLI, [drv, '--policy', pol(roots, { allowDebug: false }), '--cache', `file://${cacheDir}`]);
    assert.equal(lax.code, 2);
    assert.match(lax.stderr, /lists no measurements/);
    const otherImage = await run(VERIFY_CLI, [
      drv,
      '--policy',
      pol(roots, { ...SIM_POLICY, snp: { ...SIM_POLICY.snp, measurements: ['00'.repeat(48)] } }),
      '--cache',
      `file://${cacheDir}`,
      '--json',
    ]);
    assert.equal(otherImage.code, 1);
    assert.ok(
      (JSON.parse(otherImage.stdout) as { problems: { code: string; detail: string }[] }).problems.some(
        (p) => p.code === 'tee-evidence-failed' && /measurement/.test(p.detail),
      ),
      otherImage.stdout,
    );
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
  mkdirSync(join(dir, 'spool'));
  const cfg = join(dir, 'config.json');
  writeFileSync(
    cfg,
    JSON.stringify({ spoolDir: join(dir, 'spool'), stateDir: join(dir, 'state'), socket: join(dir, 's.sock'), tee: { provider: 'simulated' } }),
  );
  const r = await run(DAEMON_CLI, ['run', '--config', cfg]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /allowSimulated/);
});

test('a TEE provider that is not there stops the daemon from starting, with the reason', async () => {
  const dir = tempDir();
  const cfg = join(dir, 'config.json');
  writeFileSync(
    cfg,
    JSON.stringify({
      spoolDir: join(dir, 'spool'),
      stateDir: join(dir, 'state'),
      socket: join(dir, 's.sock'),
      tee: { provider: 'sev-snp', configfsPath: join(dir, 'no-configfs'), machinesFile: join(dir, 'no-machines') },
    }),
  );
  const r = await run(DAEMON_CLI, ['run', '--config', cfg]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /configfs-tsm is not available/);
});

test('TEE mode: no key file, no remote builders', async () => {
  const dir = tempDir();
  const k = await nixKeyPair(dir, 'tee-with-file');
  const base = { spoolDir: join(dir, 'spool'), stateDir: join(dir, 'state'), socket: join(dir, 's.sock') };
  const cfg = (c: unknown): string => {
    const f = join(dir, `config-${Math.random()}.json`);
    writeFileSync(f, JSON.stringify(c));
    return f;
  };
  const withFile = await run(DAEMON_CLI, [
    'run',
    '--config',
    cfg({ ...base, signingKeyFile: k.secretFile, tee: { provider: 'simulated', allowSimulated: true } }),
  ]);
  assert.equal(withFile.code, 2);
  assert.match(withFile.stderr, /signingKeyFile must not be set .* generates its signing key inside the guest/);
  const noFile = await run(DAEMON_CLI, ['run', '--config', cfg(base)]);
  assert.equal(noFile.code, 2);
  assert.match(noFile.stderr, /signingKeyFile is required/);
  // remote builders in the machines file, or in Nix's builders setting
  const machines = join(dir, 'machines');
  writeFileSync(machines, '# comment\nssh://builder.example x86_64-linux\n');
  const sim = { provider: 'simulated', allowSimulated: true };
  const m = await run(DAEMON_CLI, ['run', '--config', cfg({ ...base, tee: { ...sim, machinesFile: machines } })]);
  assert.equal(m.code, 2);
  assert.match(m.stderr, /TEE mode refuses to trace while Nix may build on remote builders: .*machines lists remote builders/);
  const b = await run(DAEMON_CLI, ['run', '--config', cfg({ ...base, tee: { ...sim, machinesFile: join(dir, 'none') } })], {
    env: { ...process.env, NIX_CONFIG: 'builders = ssh://other.example x86_64-linux' },
  });
  assert.equal(b.code, 2);
  assert.match(b.stderr, /builders setting is "ssh:\/\/other.example x86_64-linux"/);
});

test('TEE mode: remote builders configured while running stop the daemon', async () => {
  const dir = tempDir();
  const machines = join(dir, 'machines');
  process.env['BUILDTRACE_BUILDERS_RECHECK_MS'] = '200';
  const d = await startDaemon({
    dir,
    extraConfig: { signingKeyFile: undefined, tee: { provider: 'simulated', allowSimulated: true, machinesFile: machines } },
  });
  delete process.env['BUILDTRACE_BUILDERS_RECHECK_MS'];
  const exited = new Promise<number | null>((r) => d.child.once('exit', (c) => r(c)));
  writeFileSync(machines, 'ssh://late.example x86_64-linux\n');
  assert.equal(await exited, 2);
  assert.match(d.stderr(), /refuses to trace while Nix may build on remote builders: .*machines lists remote builders/);
});
