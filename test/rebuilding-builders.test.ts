// ci: nix (runs on every Nix: the host and the trixie and sid chroots; see scripts/run-tests.sh)
import assert from 'node:assert/strict';
import { appendFileSync, chmodSync, copyFileSync, cpSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { parseSecretKey } from '../src/nix/nix-key.js';
import { cpuTypeSignature } from '../src/tee/measure/cpu-types.js';
import { snpMeasurement } from '../src/tee/measure/snp-measurement.js';
import { readBuilderImage } from '../src/tee/builder-image.js';
import { createBundle } from '../src/trace/bundle.js';
import { FIXTURES, must, nixBuildWithHook, nixEnv, ROOT, run, salt, sriToHex, startDaemon, tempDir, VERIFY_CLI, type DaemonHandle } from './helpers.js';

interface Result {
  verified: boolean;
  signers: string[];
  problems: { drv: string; code: string; detail: string }[];
  derivedMeasurements?: { identity: string; ok: boolean; measurement?: string; code?: string; detail: string; signers?: string[] }[];
}

const FIRMWARE = join(ROOT, 'test', 'vectors', 'sev-snp-measure', 'ovmf_AmdSev_suffix.bin');
const TCB = { bootloader: 4, snp: 22, microcode: 213 };

/**
 * Acceptance for #19: builders A and B build and trace a builder image; a TEE builder whose
 * (simulated) reports carry the measurement of that image signs an application; the consumer
 * admits the TEE builder because the measurement derived from the image verified 2-of-{A, B}
 * is in its key attestation. Each broken link makes the application NOT VERIFIED, named.
 */
test('rebuilding builders: a TEE builder admitted by a measurement derived from its image, verified 2 of {A, B}', async () => {
  const dir = tempDir('rebuild-');
  const s = salt();
  const args = ['--arg', 'salt', `"${s}"`, '--arg', 'firmware', FIRMWARE, join(FIXTURES, 'builder-image.nix')];
  const instantiate = async (attr: string): Promise<string> => (await must('nix-instantiate', [...args, '-A', attr], { env: nixEnv() })).stdout.trim();
  const imageDrv = await instantiate('image');
  const appDrv = await instantiate('app');

  // the image and the app, built once; A and B each trace the image's closure, T the app
  const imageSpool = join(dir, 'image-spool');
  const appSpool = join(dir, 'app-spool');
  mkdirSync(imageSpool);
  mkdirSync(appSpool);
  const b1 = await nixBuildWithHook(imageSpool, [...args, '-A', 'image']);
  assert.equal(b1.code, 0, b1.stderr);
  const imagePath = b1.stdout.trim();
  const b2 = await nixBuildWithHook(appSpool, [...args, '-A', 'app']);
  assert.equal(b2.code, 0, b2.stderr);
  let n = 0;
  const feed = async (d: DaemonHandle, spool: string): Promise<void> => {
    for (const f of readdirSync(spool)) copyFileSync(join(spool, f), join(d.spool, `${n++}-${f}`));
    const r = await d.cli(['push', '--wait']);
    assert.equal(r.code, 0, r.stderr);
  };

  // the measurement of this image for a 2-vCPU EPYC-v4 launch, from the built bytes
  const files = (name: string): Buffer => readFileSync(join(imagePath, name));
  const measure = (initrd: Buffer, vcpus: number): string =>
    snpMeasurement({
      firmware: files('firmware.fd'),
      boot: { kernel: files('kernel'), initrd, append: files('cmdline').toString('utf8') },
      vcpus,
      vcpuSignature: cpuTypeSignature('EPYC-v4', 'test'),
      guestFeatures: 1n,
    }).toString('hex');
  const M = measure(files('initrd'), 2);
  const flipped = Buffer.from(files('initrd'));
  flipped[3] = (flipped[3] as number) ^ 1;
  const mFlipped = measure(flipped, 2);
  // the command gives the same number from the same bytes
  const cmd = await run(VERIFY_CLI, [
    'measure',
    '--firmware',
    join(imagePath, 'firmware.fd'),
    '--kernel',
    join(imagePath, 'kernel'),
    '--initrd',
    join(imagePath, 'initrd'),
    '--append',
    files('cmdline').toString('utf8'),
    '--vcpus',
    '2',
    '--vcpu-type',
    'EPYC-v4',
  ]);
  assert.equal(cmd.code, 0, cmd.stderr);
  assert.equal(cmd.stdout.trim(), M);

  const cache = (name: string): string => join(dir, `cache-${name}`);
  const A = await startDaemon({ dir: join(dir, 'a'), keyName: 'builder-a', extraConfig: { caches: [{ url: `file://${cache('a')}` }] } });
  const B = await startDaemon({ dir: join(dir, 'b'), keyName: 'builder-b', extraConfig: { caches: [{ url: `file://${cache('b')}` }] } });
  const teeConfig = (measurement: string, c: string): Record<string, unknown> => ({
    signingKeyFile: undefined,
    tee: { provider: 'simulated', allowSimulated: true, keyName: 'tee-builder', simulatedMeasurement: measurement },
    caches: [{ url: `file://${cache(c)}` }],
  });
  // T runs the verified image; T2 an image with one initrd byte changed
  const T = await startDaemon({ dir: join(dir, 't'), extraConfig: teeConfig(M, 't-good') });
  const T2 = await startDaemon({ dir: join(dir, 't2'), extraConfig: teeConfig(mFlipped, 't-flipped') });
  try {
    await feed(A, imageSpool);
    await feed(B, imageSpool);
    await feed(T, appSpool);
    await feed(T2, appSpool);

    // B lies about the kernel: its kernel trace, re-signed with another output hash
    cpSync(cache('b'), cache('b-lies'), { recursive: true });
    const db = new Database(B.dbFile, { readonly: true });
    const row = db.prepare("SELECT rdrv_hash, statement FROM traces WHERE drv_name = 'bt-kernel'").get() as { rdrv_hash: string; statement: Buffer };
    db.close();
    const st = JSON.parse(row.statement.toString('utf8')) as { subject: { digest: { sha256: string } }[] };
    (st.subject[0] as { digest: { sha256: string } }).digest.sha256 = 'ab'.repeat(32);
    const bKey = parseSecretKey(readFileSync(B.keys.secretFile, 'utf8'));
    writeFileSync(join(cache('b-lies'), 'traces', row.rdrv_hash), `${createBundle(Buffer.from(JSON.stringify(st)), bKey)}\n`);

    // both simulated platforms' roots are pinned: only the measurement tells T from T2
    const roots = join(dir, 'roots');
    mkdirSync(roots);
    for (const d of [T, T2]) cpSync(join(d.dir, 'state', 'simulated-tee', 'roots'), roots, { recursive: true });
    const policy = (derived: Record<string, unknown>): string => {
      const f = join(dir, `policy-${n++}.json`);
      writeFileSync(
        f,
        JSON.stringify({
          keys: {
            A: { publicKey: A.keys.publicKey },
            B: { publicKey: B.keys.publicKey },
            tee: {
              tee: {
                roots,
                policy: {
                  snp: {
                    derivedFrom: [{ image: imageDrv, imagePolicy: { threshold: 2, of: ['A', 'B'] }, vcpus: 2, vcpuType: 'EPYC-v4', ...derived }],
                    minimumTcb: TCB,
                    vmpl: 0,
                  },
                },
              },
            },
          },
          trust: 'tee',
        }),
      );
      return f;
    };
    const verify = async (pol: string, caches: string[]): Promise<{ code: number; r: Result; text: string }> => {
      const p = await run(VERIFY_CLI, [appDrv, '--policy', pol, ...caches.flatMap((c) => ['--cache', `file://${cache(c)}`]), '--json']);
      assert.ok(p.code === 0 || p.code === 1, `exit ${p.code}: ${p.stderr}`);
      return { code: p.code, r: JSON.parse(p.stdout) as Result, text: p.stdout };
    };
    const codes = (r: Result): string[] => r.problems.map((p) => p.code);

    // the chain holds: image verified 2 of {A, B}, its measurement derived, T's key admitted by it
    const good = await verify(policy({}), ['a', 'b', 't-good']);
    assert.equal(good.code, 0, good.text);
    assert.deepEqual(good.r.signers, ['tee']);
    const chain = good.r.derivedMeasurements?.[0];
    assert.equal(chain?.ok, true, good.text);
    assert.equal(chain?.measurement, M);
    assert.deepEqual([...(chain?.signers ?? [])].sort(), ['A', 'B']);
    const text = await run(VERIFY_CLI, [
      appDrv,
      '--policy',
      policy({}),
      '--cache',
      `file://${cache('a')}`,
      '--cache',
      `file://${cache('b')}`,
      '--cache',
      `file://${cache('t-good')}`,
    ]);
    assert.equal(text.code, 0);
    assert.match(text.stdout, new RegExp(`derived measurement for tee: ${M}`));
    assert.match(text.stdout, /verified under A and B; signers: A, B/);

    // 1. B lies about the kernel: the image no longer verifies 2 of {A, B}, no measurement
    const lie = await verify(policy({}), ['a', 'b-lies', 't-good']);
    assert.equal(lie.code, 1, lie.text);
    assert.ok(codes(lie.r).includes('image-not-verified'), lie.text);
    const lieDetail = lie.r.problems.find((p) => p.code === 'image-not-verified')?.detail ?? '';
    assert.match(lieDetail, new RegExp(`image ${imageDrv.replace(/\./g, '\\.')} does not verify under A and B`));
    assert.match(lieDetail, /bt-kernel/, 'the reason leads to the kernel');

    // the image named by its output path (its deriver must produce exactly that path)
    const byPath = await verify(policy({ image: imagePath }), ['a', 'b', 't-good']);
    assert.equal(byPath.code, 0, byPath.text);
    assert.equal(byPath.r.derivedMeasurements?.[0]?.measurement, M);

    // 2. the report's measurement differs (one initrd byte changed): the key is not admitted
    const other = await verify(policy({}), ['a', 'b', 't-flipped']);
    assert.equal(other.code, 1);
    assert.ok(codes(other.r).includes('measurement-not-attested'), other.text);
    assert.ok(
      other.r.problems.some((p) => p.code === 'key-not-admitted' && p.detail.includes(`MEASUREMENT ${mFlipped} is not allowed`)),
      other.text,
    );

    // 3. the launch parameters differ: the policy says 1 vCPU, the builder runs 2
    const vcpus = await verify(policy({ vcpus: 1 }), ['a', 'b', 't-good']);
    assert.equal(vcpus.code, 1);
    assert.equal(vcpus.r.derivedMeasurements?.[0]?.measurement, measure(files('initrd'), 1));
    assert.match(vcpus.r.problems.find((p) => p.code === 'measurement-not-attested')?.detail ?? '', /1 × EPYC-v4/);

    // 4. the image policy names the TEE identity itself (alone, or beside A): refused, no measurement
    for (const imagePolicy of [
      { threshold: 1, of: ['tee'] },
      { threshold: 2, of: ['A', 'tee'] },
    ]) {
      const self = await verify(policy({ imagePolicy }), ['a', 'b', 't-good']);
      assert.equal(self.code, 1);
      assert.equal(self.r.derivedMeasurements?.[0]?.code, 'image-self-vouching');
      assert.match(self.r.problems.find((p) => p.code === 'image-self-vouching')?.detail ?? '', /names tee itself/);
    }

    // trace-verify measure IMAGE: the number and the chain behind it, under an image policy file
    const imagePolicyFile = join(dir, 'image-policy.json');
    writeFileSync(
      imagePolicyFile,
      JSON.stringify({ keys: { A: { publicKey: A.keys.publicKey }, B: { publicKey: B.keys.publicKey } }, trust: { threshold: 2, of: ['A', 'B'] } }),
    );
    const m = await run(VERIFY_CLI, [
      'measure',
      imageDrv,
      '--policy',
      imagePolicyFile,
      '--cache',
      `file://${cache('a')}`,
      '--cache',
      `file://${cache('b')}`,
      '--vcpus',
      '2',
      '--vcpu-type',
      'EPYC-v4',
    ]);
    assert.equal(m.code, 0, m.stdout + m.stderr);
    assert.equal(m.stdout.split('\n')[0], M);
    assert.match(m.stdout, new RegExp(`image ${imagePath}`));
    const mLie = await run(VERIFY_CLI, [
      'measure',
      imageDrv,
      '--policy',
      imagePolicyFile,
      '--cache',
      `file://${cache('a')}`,
      '--cache',
      `file://${cache('b-lies')}`,
      '--vcpus',
      '2',
      '--vcpu-type',
      'EPYC-v4',
      '--json',
    ]);
    assert.equal(mLie.code, 1);
    assert.equal((JSON.parse(mLie.stdout) as { measurement: string | null; chain: { code: string } }).chain.code, 'image-not-verified');

    // 5. an image path nothing produces: no derivation to verify, so no measurement
    const missing = await verify(policy({ image: `${dirname(imagePath)}/${'0'.repeat(32)}-no-such-image` }), ['a', 'b', 't-good']);
    assert.equal(missing.code, 1, missing.text);
    assert.equal(missing.r.derivedMeasurements?.[0]?.code, 'image-unreadable', missing.text);
    assert.ok(codes(missing.r).includes('image-unreadable'), missing.text);

    // 6. the local copy of the verified image was changed after it was built (the Nix database
    // still records the attested NAR hash): the bytes read are not the attested ones, refused
    // before any measurement is computed from them (last: this changes the image for good)
    chmodSync(imagePath, 0o755);
    chmodSync(join(imagePath, 'cmdline'), 0o644);
    appendFileSync(join(imagePath, 'cmdline'), ' init=/evil');
    const changed = await verify(policy({}), ['a', 'b', 't-good']);
    assert.equal(changed.code, 1, changed.text);
    assert.equal(changed.r.derivedMeasurements?.[0]?.code, 'image-content-mismatch', changed.text);
    assert.ok(codes(changed.r).includes('image-content-mismatch'), changed.text);
  } finally {
    await T.stop();
    await T2.stop();
    await A.stop();
    await B.stop();
  }
});

test('nixos-module/builder-image.nix builds the layout trace-verify measures (evaluated with stand-ins for nixpkgs)', async () => {
  const s = salt();
  const b = await run('nix-build', ['--no-out-link', '--arg', 'salt', `"${s}"`, '--arg', 'firmware', FIRMWARE, join(FIXTURES, 'builder-image-eval.nix')], {
    env: nixEnv(),
  });
  assert.equal(b.code, 0, b.stderr);
  const out = b.stdout.trim();
  const cmdline = readFileSync(join(out, 'cmdline'), 'utf8');
  assert.equal(cmdline, `init=/nix/store/00000000000000000000000000000000-nixos-system/init quiet buildtrace.salt=${s} console=ttyS0`);
  const m = await run(VERIFY_CLI, [
    'measure',
    '--firmware',
    join(out, 'firmware.fd'),
    '--kernel',
    join(out, 'kernel'),
    '--initrd',
    join(out, 'initrd'),
    '--append',
    cmdline,
    '--vcpus',
    '1',
    '--vcpu-type',
    'EPYC-Milan',
  ]);
  assert.equal(m.code, 0, m.stderr);
  const img = await readBuilderImage(out);
  assert.equal(img.boot?.append, cmdline);
  assert.equal(
    m.stdout.trim(),
    snpMeasurement({
      firmware: img.firmware,
      ...(img.boot ? { boot: img.boot } : {}),
      vcpus: 1,
      vcpuSignature: cpuTypeSignature('EPYC-Milan', 't'),
      guestFeatures: 1n,
    }).toString('hex'),
  );
  // its NAR hash is the one Nix recorded for it (what the verified claims attest)
  const info = (await must('nix-store', ['--query', '--hash', out], { env: nixEnv() })).stdout.trim();
  assert.equal(img.narSha256, await sriToHex(info));
});
