// ci: nix (runs on every Nix: the host and the trixie and sid chroots; see scripts/run-tests.sh)
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { formatPublicKey, publicKeyFromRaw } from '../src/nix/nix-key.js';
import { parsePreimage } from '../src/tee/binding.js';
import { FIXTURES, must, nixBuildWithHook, nixEnv, run, salt, startDaemon, tempDir, VERIFY_CLI } from './helpers.js';

// the simulated provider's launch measurement (as in test/tee-e2e.test.ts; importing a test file would run its tests)
const SIM_POLICY = {
  snp: {
    measurements: [createHash('sha384').update('buildtrace simulated launch measurement').digest('hex')],
    minimumTcb: { bootloader: 4, snp: 22, microcode: 213 },
    vmpl: 0,
  },
};

interface Result {
  verified: boolean;
  derivationsChecked: number;
  problems: { drv: string; code: string; detail: string }[];
}

// #17 class 6: on the worker pool (closures of 500 derivations and more, or BUILDTRACE_POOL=always)
// the bundle check returned no statement bytes, so requirePerTraceEvidence failed every trace there.
test('per-trace TEE evidence on a 501-derivation closure: the same verdict inline, on the pool, and by default', async () => {
  const cacheDir = join(tempDir('pool-parity-'), 'cache');
  const d = await startDaemon({
    extraConfig: {
      signingKeyFile: undefined,
      tee: { provider: 'simulated', allowSimulated: true, perTrace: true, keyName: 'sim-tee' },
      caches: [{ url: `file://${cacheDir}` }],
    },
  });
  try {
    const args = [join(FIXTURES, 'wide.nix'), '--argstr', 'salt', salt()];
    const b = await nixBuildWithHook(d.spool, args);
    assert.equal(b.code, 0, b.stderr);
    assert.equal((await d.cli(['push', '--wait'])).code, 0);
    const drv = (await must('nix-instantiate', args, { env: nixEnv() })).stdout.trim();
    const out = join(d.dir, 'evidence');
    const ev = await d.cli(['evidence', '--out', out, '--json']);
    assert.equal(ev.code, 0, ev.stderr);
    const items = (JSON.parse(ev.stdout) as { evidence: { id: number; kind: string }[] }).evidence;
    const keyEv = items.find((e) => e.kind === 'key');
    assert.ok(keyEv);
    assert.equal(items.filter((e) => e.kind === 'trace').length, 501, 'one trace attestation per build');
    const bound = parsePreimage(readFileSync(join(out, String(keyEv.id), 'preimage.bin')));
    const key = publicKeyFromRaw('sim-tee', bound.kind === 'key' ? bound.publicKey : new Uint8Array());
    const roots = join(d.dir, 'state', 'simulated-tee', 'roots');
    const policy = join(d.dir, 'policy.json');
    writeFileSync(
      policy,
      JSON.stringify({ keys: { b: { publicKey: formatPublicKey(key), tee: { roots, policy: SIM_POLICY, requirePerTraceEvidence: true } } }, trust: 'b' }),
    );
    const verdicts: Record<string, { code: number; r: Result }> = {};
    for (const mode of ['never', 'always', 'auto']) {
      const p = await run(VERIFY_CLI, [drv, '--policy', policy, '--cache', `file://${cacheDir}`, '--json'], { env: { ...process.env, BUILDTRACE_POOL: mode } });
      assert.ok(p.code === 0 || p.code === 1, `${mode}: exit ${p.code} ${p.stderr}`);
      verdicts[mode] = { code: p.code, r: JSON.parse(p.stdout) as Result };
    }
    for (const [mode, v] of Object.entries(verdicts)) {
      assert.equal(v.code, 0, `${mode}: ${JSON.stringify(v.r.problems.slice(0, 3))}`);
      assert.equal(v.r.derivationsChecked, 501);
    }
    assert.deepEqual(verdicts['always'], verdicts['never']);
    // the requirement is enforced on both paths: evidence that binds nothing fails each
    const noEvidence = join(tempDir('pool-parity-'), 'cache');
    await must('cp', ['-r', cacheDir, noEvidence]);
    await must('rm', ['-r', join(noEvidence, 'buildtrace', 'trace-evidence')]);
    for (const mode of ['never', 'always']) {
      const p = await run(VERIFY_CLI, [drv, '--policy', policy, '--cache', `file://${noEvidence}`, '--json'], {
        env: { ...process.env, BUILDTRACE_POOL: mode },
      });
      assert.equal(p.code, 1, `${mode}: ${p.stderr}`);
      assert.ok(
        (JSON.parse(p.stdout) as Result).problems.some((x) => x.code === 'tee-evidence-failed' && /per-trace evidence/.test(x.detail)),
        mode,
      );
    }
  } finally {
    assert.equal(await d.stop(), 0);
  }
});
