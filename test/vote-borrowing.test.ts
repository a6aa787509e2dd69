// ci: nix (runs on every Nix: the host and the trixie and sid chroots; see scripts/run-tests.sh)
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, normalize } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { appendLines } from '../src/cache/backend.js';
import { FileCache } from '../src/cache/file-cache.js';
import { parseDerivation } from '../src/nix/aterm.js';
import { parseSecretKey } from '../src/nix/nix-key.js';
import { resolveDerivation } from '../src/nix/resolve.js';
import { createBundle } from '../src/trace/bundle.js';
import { FIXTURES, must, nixBuildWithHook, nixEnv, run, salt, startDaemon, tempDir, VERIFY_CLI, type DaemonHandle } from './helpers.js';

// #17 class 3 on real Nix builds: H built `dep` (dH) and built `app` with L's dep (dL, as if
// substituted), so app refers to dL at run time. L signs dep = dL, app from dL, and ONE more
// false claim: app from dH gives the same app. Before trust counted per output map, that claim
// pulled H's claim for dH into the chosen set: dep was "signed by {H, L}" and app VERIFIED
// 2-of-2 although dL, in app's runtime closure, is attested by L alone.

interface Result {
  verified: boolean;
  problems: { drv: string; code: string; detail: string }[];
  world?: Record<string, { narSha256?: string }>;
}

describe('vote borrowing (#17 class 3) on real builds, file:// and http caches', () => {
  let H: DaemonHandle;
  let L: DaemonHandle;
  let dir: string;
  let cache: FileCache;
  let depDrv: string;
  let appDrv: string;
  let dL: string;
  let dH: string;
  const honestLines: { rdrv: string; line: string }[] = [];
  let borrowLine: { rdrv: string; line: string };

  /** The traces a daemon signed: drv name -> rows. */
  const traces = (d: DaemonHandle): { drv_name: string; rdrv_hash: string; bundle: string; statement: Buffer }[] => {
    const db = new Database(d.dbFile, { readonly: true });
    const rows = db.prepare('SELECT drv_name, rdrv_hash, bundle, statement FROM traces').all() as {
      drv_name: string;
      rdrv_hash: string;
      bundle: string;
      statement: Buffer;
    }[];
    db.close();
    return rows;
  };
  const outputOf = (d: DaemonHandle, drvName: string): { path: string; nar_hash: string } => {
    const db = new Database(d.dbFile, { readonly: true });
    const row = db
      .prepare("SELECT o.path, o.nar_hash FROM outputs o JOIN traces t ON t.id = o.trace_id WHERE t.drv_name = ? AND o.name = 'out'")
      .get(drvName) as {
      path: string;
      nar_hash: string;
    };
    db.close();
    return row;
  };
  const feed = async (d: DaemonHandle, spool: string, keep: (drv: string) => boolean): Promise<void> => {
    for (const f of readdirSync(spool)) {
      const rec = JSON.parse(readFileSync(join(spool, f), 'utf8')) as { drv: string };
      if (keep(rec.drv)) copyFileSync(join(spool, f), join(d.spool, `${f.replace('.json', '')}-x.json`));
    }
    const r = await d.cli(['push', '--wait']);
    assert.equal(r.code, 0, r.stderr);
  };

  before(async () => {
    dir = tempDir('borrow-');
    const s = salt();
    const nondet = join(dir, 'nondet');
    const args = [join(FIXTURES, 'borrow.nix'), '--argstr', 'salt', s, '--argstr', 'nondet', nondet];
    [depDrv, appDrv] = (await must('nix-instantiate', [...args, '-A', 'dep', '-A', 'app'], { env: nixEnv() })).stdout.trim().split('\n') as [string, string];
    [H, L] = await Promise.all([startDaemon({ keyName: 'builder-h' }), startDaemon({ keyName: 'builder-l' })]);

    // H builds dep
    writeFileSync(nondet, `H ${s}\n`);
    const stH = join(dir, 'staging-h');
    mkdirSync(stH);
    const bh = await nixBuildWithHook(stH, [...args, '-A', 'dep']);
    assert.equal(bh.code, 0, bh.stderr);
    await feed(H, stH, () => true);
    dH = outputOf(H, 'b-dep').path;
    // the other build of dep: drop H's output (and the resolved .drv files that name it)
    const doomed = (await must('nix-store', ['--query', '--referrers-closure', dH], { env: nixEnv() })).stdout.trim().split('\n');
    await must('nix-store', ['--delete', ...doomed], { env: nixEnv() });
    // L builds dep and app; H builds app from L's dep (the same build: H's daemon signs it)
    writeFileSync(nondet, `L ${s}\n`);
    const stL = join(dir, 'staging-l');
    mkdirSync(stL);
    const bl = await nixBuildWithHook(stL, [...args, '-A', 'app']);
    assert.equal(bl.code, 0, bl.stderr);
    await feed(L, stL, () => true);
    await feed(H, stL, (d) => !d.includes('-b-dep'));
    dL = outputOf(L, 'b-dep').path;
    assert.notEqual(dL, dH, 'dep must differ between the builders');
    assert.match(readFileSync(outputOf(L, 'b-app').path, 'utf8'), new RegExp(dL), 'app embeds dL: it is in the runtime closure');

    for (const d of [H, L]) for (const t of traces(d)) honestLines.push({ rdrv: t.rdrv_hash, line: t.bundle });
    // L's one extra false claim: app resolved with dH gives the same app
    const udrv = parseDerivation(readFileSync(appDrv, 'latin1'), appDrv);
    const fromDH = resolveDerivation(udrv, (d, o) => (d === depDrv && o === 'out' ? dH : undefined)).path.hashPart;
    const lApp = traces(L).find((t) => t.drv_name === 'b-app');
    assert.ok(lApp);
    const hDep = outputOf(H, 'b-dep');
    const lDep = outputOf(L, 'b-dep');
    // the statement of L's true claim, retargeted (and its inputs, if it lists any)
    const lie = lApp.statement.toString('utf8').replaceAll(lApp.rdrv_hash, fromDH).replaceAll(dL, dH).replaceAll(lDep.nar_hash, hDep.nar_hash);
    const lKey = parseSecretKey(readFileSync(L.keys.secretFile, 'utf8'));
    borrowLine = { rdrv: fromDH, line: createBundle(Buffer.from(lie), lKey) };
    cache = new FileCache(join(dir, 'cache'));
  });

  after(async () => {
    await Promise.all([H.stop(), L.stop()]);
  });

  let n = 0;
  const policy = (trust: unknown): string => {
    const f = join(dir, `policy-${n++}.json`);
    writeFileSync(f, JSON.stringify({ keys: { H: { publicKey: H.keys.publicKey }, L: { publicKey: L.keys.publicKey } }, trust }));
    return f;
  };
  /** trace-verify inline and on the worker threads: the same verdict. */
  const verify = async (c: FileCache | string, trust: unknown): Promise<{ code: number; r: Result }> => {
    const pol = policy(trust);
    const argv = [appDrv, '--policy', pol, '--cache', typeof c === 'string' ? c : c.url, '--json'];
    const inline = await run(VERIFY_CLI, argv, { env: { ...process.env, BUILDTRACE_POOL: 'never', BUILDTRACE_POOL_MIN: 'never' } });
    const pooled = await run(VERIFY_CLI, argv, { env: { ...process.env, BUILDTRACE_POOL: 'always', BUILDTRACE_POOL_MIN: '0' } });
    assert.ok(inline.code === 0 || inline.code === 1, `exit ${inline.code}: ${inline.stderr}`);
    assert.equal(pooled.code, inline.code, pooled.stderr);
    assert.equal((JSON.parse(pooled.stdout) as Result).verified, (JSON.parse(inline.stdout) as Result).verified);
    return { code: inline.code, r: JSON.parse(inline.stdout) as Result };
  };
  const both = { threshold: 2, of: ['H', 'L'] };

  test('the liar alone: dL is attested by L only, 2-of-2 fails', async () => {
    const c = new FileCache(join(dir, 'honest'));
    for (const { rdrv, line } of honestLines) await appendLines(c, `traces/${rdrv}`, [line]);
    const { code, r } = await verify(c, both);
    assert.equal(code, 1, JSON.stringify(r.problems));
  });

  test('with one extra false claim the liar does not borrow the honest vote for dH: NOT VERIFIED, naming dep and dL (file:// and http)', async () => {
    for (const { rdrv, line } of [...honestLines, borrowLine]) await appendLines(cache, `traces/${rdrv}`, [line]);
    const { code, r } = await verify(cache, both);
    assert.equal(code, 1, 'before #17 this printed VERIFIED');
    assert.equal(r.verified, false);
    assert.ok(
      r.problems.some((p) => p.code === 'threshold-not-met' && p.drv === depDrv && p.detail.includes(dL) && /signed by \{L\}/.test(p.detail)),
      JSON.stringify(r.problems),
    );
    // the same cache over http
    const root = join(dir, 'cache');
    const server: Server = createServer((req, res) => {
      const f = normalize(join(root, decodeURIComponent(req.url ?? '/')));
      if (!f.startsWith(`${root}/`) || !existsSync(f)) res.writeHead(404).end();
      else res.writeHead(200).end(readFileSync(f));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const overHttp = await verify(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, both);
      assert.equal(overHttp.code, 1);
      assert.ok(overHttp.r.problems.some((p) => p.code === 'threshold-not-met' && p.drv === depDrv && /signed by \{L\}/.test(p.detail)));
    } finally {
      server.close();
    }
    // 1-of-2 verifies (either chain alone is enough), and what it attests includes dL with L's hash
    const one = await verify(cache, { threshold: 1, of: ['H', 'L'] });
    assert.equal(one.code, 0, JSON.stringify(one.r.problems));
    assert.equal(one.r.world?.[dL]?.narSha256, outputOf(L, 'b-dep').nar_hash);
  });
});
