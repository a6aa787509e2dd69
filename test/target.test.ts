// ci: nix (runs on every Nix: the host and the trixie and sid chroots; see scripts/run-tests.sh)
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { DrvHashCache } from '../src/nix/hash-modulo.js';
import { DrvLoader } from '../src/store/drv-loader.js';
import { after, before, describe, test } from 'node:test';
import {
  FIXTURES,
  must,
  nixBuildWithHook,
  nixEnv,
  run,
  salt,
  startDaemon,
  substituteWithDeriver as substitute,
  tempDir,
  VERIFY_CLI,
  type DaemonHandle,
} from './helpers.js';

interface Result {
  verified: boolean;
  outputs: Record<string, string>;
  problems: { drv: string; code: string; detail: string }[];
}

/**
 * #17 classes 1 and 2: the target's door. A hostile binary cache (its narinfo key trusted by
 * Nix, here --no-check-sigs) names any derivation in the unsigned `Deriver:` field; Nix records
 * a resolved .drv as the deriver of content-addressed outputs. Neither may decide what a
 * verdict is about.
 */
describe('the target: outputs of the unresolved derivation, proven', () => {
  let A: DaemonHandle;
  let B: DaemonHandle;
  let dir: string;
  const drv = new Map<string, string>();
  const out = new Map<string, string>();
  let resolvedTop: string;

  before(async () => {
    dir = tempDir('target-');
    const args = [join(FIXTURES, 'target.nix'), '--argstr', 'salt', salt()];
    const attrs = ['ia', 'top'].flatMap((a) => ['-A', a]);
    for (const p of (await must('nix-instantiate', [...args, ...attrs, '-A', 'dep'], { env: nixEnv() })).stdout.trim().split('\n')) {
      drv.set(p.replace(/^.*?-tg-/, '').replace(/\.drv$/, ''), p);
    }
    [A, B] = await Promise.all([startDaemon({ keyName: 'target-a' }), startDaemon({ keyName: 'target-b' })]);
    const staging = join(dir, 'staging');
    mkdirSync(staging);
    const b = await nixBuildWithHook(staging, [...args, ...attrs]);
    assert.equal(b.code, 0, b.stderr);
    const [ia, top] = b.stdout.trim().split('\n');
    out.set('ia', ia as string).set('top', top as string);
    resolvedTop = (await must('nix-store', ['--query', '--deriver', top as string], { env: nixEnv() })).stdout.trim();
    assert.notEqual(resolvedTop, drv.get('top'), 'Nix 2.8+ records the resolved .drv for a CA output');
    // A signs everything; B only the top (its dependency has one signer)
    await feed(staging, A, () => true);
    await feed(staging, B, (p) => p.endsWith('-tg-top.drv'));
  });

  /** Hands the hook's records in `staging` that `keep` selects to a daemon, which signs and publishes them. */
  const feed = async (staging: string, d: DaemonHandle, keep: (drvPath: string) => boolean): Promise<void> => {
    for (const f of readdirSync(staging)) {
      const rec = JSON.parse(readFileSync(join(staging, f), 'utf8')) as { drv: string };
      if (keep(rec.drv)) copyFileSync(join(staging, f), join(d.spool, f));
    }
    const r = await d.cli(['push', '--wait']);
    assert.equal(r.code, 0, r.stderr);
  };

  after(async () => {
    await Promise.all([A.stop(), B.stop()]);
  });

  let n = 0;
  const policy = (trust: unknown): string => {
    const f = join(dir, `policy-${n++}.json`);
    writeFileSync(f, JSON.stringify({ keys: { A: { publicKey: A.keys.publicKey }, B: { publicKey: B.keys.publicKey } }, trust }));
    return f;
  };
  const verify = async (target: string, trust: unknown, extra: readonly string[] = []): Promise<{ code: number; stderr: string; r?: Result }> => {
    const p = await run(VERIFY_CLI, [target, '--policy', policy(trust), '--db', A.dbFile, '--db', B.dbFile, '--json', ...extra]);
    return { code: p.code, stderr: p.stderr, ...(p.stdout ? { r: JSON.parse(p.stdout) as Result } : {}) };
  };

  const substituteWithDeriver = (path: string, deriver: string): Promise<void> => substitute(path, deriver, join(dir, `bc-${n++}`));
  /** A path named like an output of `name`, holding other bytes. */
  const impostor = async (name: string): Promise<string> => {
    const d = join(dir, `evil-${n++}`);
    mkdirSync(d);
    writeFileSync(join(d, `tg-${name}`), `evil ${salt()}\n`);
    return (await must('nix-store', ['--add', join(d, `tg-${name}`)], { env: nixEnv() })).stdout.trim();
  };

  test('class 1: an output path whose Deriver: names an unrelated derivation is refused, not verified for that derivation', async () => {
    const real = await verify(out.get('ia') as string, 'A');
    assert.equal(real.code, 0, real.stderr);
    assert.deepEqual(real.r?.outputs, { out: out.get('ia') });
    const evil = await impostor('ia');
    await substituteWithDeriver(evil, drv.get('ia') as string);
    const v = await verify(evil, 'A');
    assert.equal(v.code, 2, `exit ${v.code}: ${JSON.stringify(v.r)}`);
    assert.match(v.stderr, /is not an output of .*-tg-ia\.drv, the deriver Nix recorded/);
    assert.match(v.stderr, /pass the unresolved \.drv you evaluated/);
    // no deriver at all, or one that is not in the store
    const orphan = await impostor('ia');
    const none = await verify(orphan, 'A');
    assert.equal(none.code, 2);
    assert.match(none.stderr, /knows no deriver/);
    const absent = await impostor('ia');
    await substituteWithDeriver(absent, `/nix/store/${'0'.repeat(32)}-tg-ia.drv`);
    const gone = await verify(absent, 'A');
    assert.equal(gone.code, 2);
    assert.match(gone.stderr, /is not in the store/);
  });

  test("class 2: a resolved .drv given as target is refused; by output path, the unresolved one (from Nix's realisations) checks every dependency", async () => {
    const both = { threshold: 2, of: ['A', 'B'] };
    const unresolved = await verify(drv.get('top') as string, both);
    assert.equal(unresolved.code, 1);
    assert.ok(
      unresolved.r?.problems.some((p) => p.drv === drv.get('dep') && p.code === 'threshold-not-met'),
      JSON.stringify(unresolved.r?.problems),
    );
    const resolved = await verify(resolvedTop, both);
    assert.equal(resolved.code, 2, `exit ${resolved.code}: ${JSON.stringify(resolved.r)}`);
    assert.match(resolved.stderr, /a resolved derivation .* verifying it would skip their traces/);
    // by output path: the recorded deriver is the resolved .drv, so the door takes the unresolved one Nix's
    // realisations name (proven: the verdict must give this very path), and the dependency's traces are asked for
    const byPath = await verify(out.get('top') as string, both);
    assert.equal(byPath.code, 1, `exit ${byPath.code}: ${byPath.stderr}`);
    assert.ok(
      byPath.r?.problems.some((p) => p.drv === drv.get('dep') && p.code === 'threshold-not-met'),
      JSON.stringify(byPath.r?.problems),
    );
    const underA = await run(VERIFY_CLI, [out.get('top') as string, '--policy', policy('A'), '--db', A.dbFile, '--json']);
    assert.equal(underA.code, 0, underA.stderr);
    const j = JSON.parse(underA.stdout) as Result & { target: string };
    assert.equal(j.target, drv.get('top'));
    assert.deepEqual(j.outputs, { out: out.get('top') });
  });

  test('installed: a content-addressed output whose recorded deriver is resolved verifies through the unresolved derivation', async () => {
    const root = join(dir, 'top-root');
    await must('nix-store', ['--add-root', root, '--indirect', '--realise', out.get('top') as string], { env: nixEnv() });
    const r = await run(VERIFY_CLI, ['installed', '--policy', policy('A'), root, '--db', A.dbFile, '--json']);
    assert.equal(r.code, 0, `${r.stderr} ${r.stdout}`);
    const j = JSON.parse(r.stdout) as { verified: boolean; paths: { path: string; deriver: string; status: string; reason: string }[] };
    const top = j.paths.find((p) => p.path === out.get('top'));
    assert.equal(top?.status, 'verified', JSON.stringify(j));
    // under both keys the dependency has one signer: the unresolved derivation's verdict says so (not a door refusal)
    const both = await run(VERIFY_CLI, ['installed', '--policy', policy({ threshold: 2, of: ['A', 'B'] }), root, '--db', A.dbFile, '--db', B.dbFile, '--json']);
    assert.equal(both.code, 1, both.stderr);
    const jb = JSON.parse(both.stdout) as typeof j;
    assert.match(jb.paths.find((p) => p.path === out.get('top'))?.reason ?? '', /^\/nix\/store\/\S+-tg-(top|dep)\.drv: threshold-not-met/, JSON.stringify(jb));
    assert.equal(jb.paths.find((p) => p.path === out.get('top'))?.deriver, resolvedTop);
    rmSync(root); // the next test replaces the path
  });

  test("a lying Realisations row cannot make another derivation's verdict verify the path", async () => {
    // another top (other salt), built and signed by A: its verdict verifies, for its own output
    const staging = join(dir, 'staging-other');
    mkdirSync(staging);
    const args = [join(FIXTURES, 'target.nix'), '--argstr', 'salt', salt(), '-A', 'top'];
    const otherDrv = (await must('nix-instantiate', args, { env: nixEnv() })).stdout.trim();
    const b = await nixBuildWithHook(staging, args);
    assert.equal(b.code, 0, b.stderr);
    await feed(staging, A, () => true);
    const otherOut = b.stdout.trim();
    const other = await verify(otherDrv, 'A');
    assert.equal(other.code, 0, other.stderr);
    assert.deepEqual(other.r?.outputs, { out: otherOut });
    // a copy of the Nix database whose realisations for our top's output name the other top's hash modulo
    const loader = new DrvLoader();
    const otherHash = new DrvHashCache(loader.drv).masked(loader.drv(otherDrv)).hashes.get('out') as string;
    const nixDb = join(dir, 'lying-db.sqlite');
    const live = new Database('/nix/var/nix/db/db.sqlite', { readonly: true, fileMustExist: true });
    await live.backup(nixDb);
    live.close();
    const db = new Database(nixDb);
    const changed = db
      .prepare('UPDATE Realisations SET drvPath = ? WHERE outputPath = (SELECT id FROM ValidPaths WHERE path = ?)')
      .run(`sha256:${otherHash}`, out.get('top')).changes;
    db.close();
    assert.ok(changed >= 1, 'Nix recorded a realisation for the CA output');
    const v = await verify(out.get('top') as string, 'A', ['--nix-db', nixDb]);
    assert.equal(v.code, 1, `exit ${v.code}: ${v.stderr}`);
    assert.ok(
      v.r?.problems.some((p) => p.code === 'target-unproven' && p.drv === otherDrv && p.detail.includes(out.get('top') as string)),
      JSON.stringify(v.r?.problems),
    );
    // no deriver recorded at all (a path copied in without one): the realisations still name the unresolved .drv
    const noDeriverDb = join(dir, 'no-deriver-db.sqlite');
    const live2 = new Database('/nix/var/nix/db/db.sqlite', { readonly: true, fileMustExist: true });
    await live2.backup(noDeriverDb);
    live2.close();
    const db3 = new Database(noDeriverDb);
    assert.equal(db3.prepare('UPDATE ValidPaths SET deriver = NULL WHERE path = ?').run(out.get('top')).changes, 1);
    db3.close();
    const noDeriver = await verify(out.get('top') as string, 'A', ['--nix-db', noDeriverDb]);
    assert.equal(noDeriver.code, 0, `exit ${noDeriver.code}: ${noDeriver.stderr}`);
    assert.deepEqual(noDeriver.r?.outputs, { out: out.get('top') });
    // no realisation names an unresolved derivation of the path: the door refuses, saying so
    const db2 = new Database(nixDb);
    db2.prepare('DELETE FROM Realisations WHERE outputPath = (SELECT id FROM ValidPaths WHERE path = ?)').run(out.get('top'));
    db2.close();
    const none = await verify(out.get('top') as string, 'A', ['--nix-db', nixDb]);
    assert.equal(none.code, 2, `exit ${none.code}: ${none.stderr}`);
    assert.match(none.stderr, /is a resolved derivation .*no unresolved derivation producing it was found in the Nix database's realisations/);
    assert.match(none.stderr, /TARGET_REFUSED|target-refused|pass the unresolved \.drv/);
  });

  test('a content-addressed output path is a target only when the verified claim gives that very path', async () => {
    // a cache names the unresolved .drv: the real output verifies, an impostor named like it does not
    await substituteWithDeriver(out.get('top') as string, drv.get('top') as string);
    const real = await verify(out.get('top') as string, 'A');
    assert.equal(real.code, 0, `${real.stderr} ${JSON.stringify(real.r?.problems)}`);
    assert.deepEqual(real.r?.outputs, { out: out.get('top') });
    const evil = await impostor('top');
    await substituteWithDeriver(evil, drv.get('top') as string);
    const v = await verify(evil, 'A');
    assert.equal(v.code, 1, v.stderr);
    assert.ok(
      v.r?.problems.some((p) => p.code === 'target-unproven' && p.drv === drv.get('top') && p.detail.includes(evil)),
      JSON.stringify(v.r?.problems),
    );
  });
});
