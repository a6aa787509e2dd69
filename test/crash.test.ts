// ci: nix (runs on every Nix: the host and the trixie and sid chroots; see scripts/run-tests.sh)
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { parsePublicKey } from '../src/nix/nix-key.js';
import { checkBundle } from '../src/trace/bundle.js';
import { FIXTURES, must, nixBuildWithHook, nixEnv, salt, startDaemon, waitFor } from './helpers.js';

const N = 240;

function count(dbFile: string): number {
  try {
    const db = new Database(dbFile, { readonly: true, fileMustExist: true });
    try {
      return (db.prepare('SELECT count(*) AS n FROM traces').get() as { n: number }).n;
    } finally {
      db.close();
    }
  } catch {
    return 0;
  }
}

test(`kill -9 during a burst of ${N} builds: every build ends with exactly one trace`, { timeout: 600_000 }, async () => {
  const d = await startDaemon({ batchSize: 8 });
  const s = salt();
  const args = [join(FIXTURES, 'many.nix'), '--argstr', 'salt', s, '--arg', 'n', String(N), '--argstr', 'prefix', 'crash'];
  const drvs = (await must('nix-instantiate', args, { env: nixEnv() })).stdout.trim().split('\n');
  assert.equal(drvs.length, N);

  const build = nixBuildWithHook(d.spool, args);
  // first crash: as soon as some traces are committed, while the build is still going
  await waitFor(() => count(d.dbFile) >= 16, 120_000, 'first traces');
  await d.kill9();
  const atFirstKill = count(d.dbFile);
  await d.restart();
  // second crash, right after it has started catching up
  await waitFor(() => count(d.dbFile) > atFirstKill, 120_000, 'progress after restart');
  await d.kill9();
  const b = await build;
  assert.equal(b.code, 0, b.stderr);
  const leftInSpool = readdirSync(d.spool).filter((n) => n.endsWith('.json')).length;
  assert.ok(count(d.dbFile) < N, 'the kills happened before everything was traced');
  assert.ok(leftInSpool > 0, 'records were still waiting in the spool');

  await d.restart();
  const p = await d.cli(['push', '--wait']);
  assert.equal(p.code, 0, p.stderr);

  const db = new Database(d.dbFile, { readonly: true });
  const rows = db.prepare('SELECT id, rdrv_path, rdrv_hash, bundle FROM traces').all() as {
    id: number;
    rdrv_path: string;
    rdrv_hash: string;
    bundle: string;
  }[];
  const ours = rows.filter((r) => drvs.includes(r.rdrv_path));
  assert.equal(ours.length, N, 'one trace per build');
  assert.equal(new Set(ours.map((r) => r.rdrv_hash)).size, N, 'no duplicate');
  const pub = parsePublicKey(d.keys.publicKey);
  for (const r of ours) {
    const c = checkBundle(r.bundle, [pub]);
    assert.ok(c.ok, `trace ${r.id} verifies`);
    const outs = db.prepare('SELECT count(*) AS n FROM outputs WHERE trace_id = ?').get(r.id) as { n: number };
    assert.equal(outs.n, 1, `trace ${r.id} has its output row`);
  }
  const aliases = db.prepare('SELECT drv_path, count(*) AS n FROM trace_drvs GROUP BY drv_path HAVING n > 1').all();
  assert.deepEqual(aliases, []);
  db.close();
  assert.deepEqual(
    readdirSync(d.spool).filter((n) => n !== 'rejected'),
    [],
    'spool drained, no temp files left',
  );
  assert.deepEqual(readdirSync(join(d.spool, 'rejected')), [], 'nothing rejected');
  assert.equal(await d.stop(), 0);
});
