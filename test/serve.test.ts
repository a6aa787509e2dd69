// ci: nix (runs on every Nix: the host and the trixie and sid chroots; see scripts/run-tests.sh)
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { FIXTURES, must, nixBuildWithHook, nixEnv, run, salt, startDaemon, tempDir, VERIFY_CLI, type DaemonHandle } from './helpers.js';
import { hashOf, httpGet, nixRealise, serveStatus as status, startServe, type Serve } from './serve-helpers.js';
import { startNginx, type NginxCache } from './nginx.js';
import { narHashText } from '../src/verify/last-mile.js';

describe('trace-verify serve: stock Nix substitutes only what verifies', () => {
  let nginx: NginxCache;
  let fileCache: string;
  let A: DaemonHandle;
  let B: DaemonHandle;
  let dir: string;
  let args: string[];
  let nondet: string;
  const drv = new Map<string, string>();
  let n = 0;
  const policy = (trust: unknown): string => {
    const f = join(dir, `policy-${n++}.json`);
    writeFileSync(f, JSON.stringify({ keys: { A: { publicKey: A.keys.publicKey }, B: { publicKey: B.keys.publicKey } }, trust }));
    return f;
  };
  const both = { threshold: 2, of: ['A', 'B'] };
  const either = { threshold: 1, of: ['A', 'B'] };

  /** A consumer store under its own root that holds only the .drv files of `attrs`. */
  const consumer = async (attrs: readonly string[]): Promise<{ root: string; drvs: string[] }> => {
    const root = join(tempDir('serve-consumer-'), 'store');
    const drvs = (await must('nix-instantiate', ['--store', root, ...args, ...attrs.flatMap((a) => ['-A', a])], { env: nixEnv() })).stdout.trim().split('\n');
    return { root, drvs };
  };
  /** Stock Nix realises `drvs` in the consumer store, substituting from `s` only, building nothing. */
  const realise = (root: string, s: Serve, drvs: readonly string[]) => nixRealise(root, s, drvs);
  const validIn = async (root: string, paths: readonly string[]): Promise<boolean[]> =>
    Promise.all(paths.map(async (p) => (await run('nix-store', ['--store', root, '--check-validity', p], { env: nixEnv() })).code === 0));

  const feed = async (d: DaemonHandle, staging: string, keep: (f: string) => boolean): Promise<void> => {
    for (const f of readdirSync(staging)) if (keep(readFileSync(join(staging, f), 'utf8'))) copyFileSync(join(staging, f), join(d.spool, `x-${f}`));
    const r = await d.cli(['push', '--wait']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
  };

  before(async () => {
    dir = tempDir('serve-');
    nginx = await startNginx();
    fileCache = join(dir, 'file-cache');
    const caches = [{ url: `file://${fileCache}` }, { url: nginx.url }];
    [A, B] = await Promise.all([
      startDaemon({ keyName: 'builder-a', extraConfig: { caches, uploadOutputs: true } }),
      startDaemon({ keyName: 'builder-b', extraConfig: { caches, uploadOutputs: true } }),
    ]);
    nondet = join(dir, 'nondet');
    const s = salt();
    args = [join(FIXTURES, 'serve.nix'), '--argstr', 'salt', s, '--argstr', 'nondet', nondet];
    const attrs = ['top', 'app', 'capp', 'indep'];
    for (const a of attrs) drv.set(a, (await must('nix-instantiate', [...args, '-A', a], { env: nixEnv() })).stdout.trim());
    drv.set('lib', (await must('nix-instantiate', [...args, '-A', 'lib'], { env: nixEnv() })).stdout.trim());
    // A builds everything; its outputs go to both caches first
    writeFileSync(nondet, `A ${s}\n`);
    const stagingA = join(dir, 'staging-a');
    mkdirSync(stagingA);
    const ba = await nixBuildWithHook(stagingA, [...args, ...attrs.flatMap((a) => ['-A', a])]);
    assert.equal(ba.code, 0, ba.stderr);
    await feed(A, stagingA, () => true);
    // B agrees on everything but lib: it rebuilds lib (other bytes) and its users
    const liar = /-s-(lib|app|capp)\.drv/;
    await feed(B, stagingA, (rec) => !liar.test(rec));
    const libOut = (await must('nix-store', ['-q', '--outputs', drv.get('lib') as string], { env: nixEnv() })).stdout.trim();
    const doomed = (await must('nix-store', ['--query', '--referrers-closure', libOut], { env: nixEnv() })).stdout.trim().split('\n');
    await must('nix-store', ['--delete', ...doomed], { env: nixEnv() });
    writeFileSync(nondet, `B ${s}\n`);
    const stagingB = join(dir, 'staging-b');
    mkdirSync(stagingB);
    const bb = await nixBuildWithHook(stagingB, [...args, '-A', 'app', '-A', 'capp']);
    assert.equal(bb.code, 0, bb.stderr);
    await feed(B, stagingB, () => true);
  });

  after(async () => {
    await Promise.all([A?.stop(), B?.stop(), nginx?.stop()]);
  });

  test('2-of-2: a fresh store holding only .drv files gets the 31-derivation closure from the substituter alone, verified by Nix too', async () => {
    const { root, drvs } = await consumer(['top']);
    const s = await startServe(root, policy(both), [`file://${fileCache}`, nginx.url]);
    try {
      const r = await realise(root, s, drvs);
      assert.equal(r.code, 0, `${r.stderr}\n${s.stderr()}\n${JSON.stringify(await status(s))}`);
      // Nix 2.8 lists floating CA derivations as "will be built" before it asks for their
      // realisations; with --max-jobs 0 a build would fail the run, and none starts
      assert.doesNotMatch(r.stderr, /building '/);
      const out = r.stdout.trim().split('\n');
      const closure = (await must('nix-store', ['--store', root, '-qR', ...out], { env: nixEnv() })).stdout.trim().split('\n');
      assert.ok(closure.length >= 30, `closure of ${closure.length} paths`);
      const v = await run('nix-store', ['--store', root, '--verify-path', ...closure], { env: nixEnv() });
      assert.equal(v.code, 0, v.stderr);
      const st = await status(s);
      assert.ok(st.served >= 30, JSON.stringify(st));
      assert.equal(st.narsCutOff, 0);
    } finally {
      await s.stop();
    }
  });

  const outOf = async (attr: string): Promise<string> =>
    (await must('nix-store', ['-q', '--outputs', drv.get(attr) as string], { env: nixEnv() })).stdout.trim().split('\n')[0] as string;

  test('a lying builder under 2-of-2: the library and its users are refused, an independent path substitutes; 1-of-2 serves all', async () => {
    const { root, drvs } = await consumer(['lib', 'app', 'capp', 'indep']);
    const [libD, appD, cappD, indepD] = drvs as [string, string, string, string];
    const s = await startServe(root, policy(both), [`file://${fileCache}`, nginx.url]);
    try {
      for (const d of [libD, appD, cappD]) {
        const r = await realise(root, s, [d]);
        assert.notEqual(r.code, 0, `${d} must not substitute under 2-of-2`);
      }
      const ok = await realise(root, s, [indepD]);
      assert.equal(ok.code, 0, ok.stderr);
      const lib = await outOf('lib');
      assert.deepEqual(await validIn(root, [lib, await outOf('app'), await outOf('indep')]), [false, false, true]);
      const st = await status(s);
      const r = st.lastRefusals.find((x) => x.path === lib);
      assert.ok(r, JSON.stringify(st.lastRefusals));
      assert.equal(r.drv, libD);
      assert.ok(r.codes.includes('content-disputed'), JSON.stringify(r));
      const text = await run(VERIFY_CLI, ['serve', 'status', '--state-dir', s.stateDir]);
      assert.match(text.stdout, new RegExp(`${lib}.*content-disputed`));
    } finally {
      await s.stop();
    }
    const pol1 = policy(either);
    const s1 = await startServe(root, pol1, [`file://${fileCache}`, nginx.url]);
    try {
      // app first, as Nix asks: lib (disputed, both contents admitted under 1-of-2) is then
      // served from app's verified world, with the content trace-verify gives for app
      const [app, lib] = [await outOf('app'), await outOf('lib')];
      const narHash = new Map<string, string>();
      for (const p of [app, lib]) {
        const g = await httpGet(`${s1.url}/${hashOf(p)}.narinfo`);
        assert.equal(g.status, 200, g.body);
        narHash.set(p, /^NarHash: (\S+)$/m.exec(g.body)?.[1] as string);
      }
      assert.equal((await status(s1)).servedFromWorld, 1);
      const tv = await run(VERIFY_CLI, [appD, '--policy', pol1, '--cache', `file://${fileCache}`, '--cache', nginx.url, '--no-local-store', '--json']);
      assert.equal(tv.code, 0, tv.stderr);
      const world = (JSON.parse(tv.stdout) as { world: Record<string, { narSha256?: string }> }).world;
      for (const p of [app, lib]) assert.equal(narHash.get(p), narHashText(world[p]?.narSha256 as string), p);
      const r = await realise(root, s1, [libD, appD, cappD]);
      assert.equal(r.code, 0, `${r.stderr}\n${JSON.stringify((await status(s1)).lastRefusals)}`);
      assert.deepEqual(await validIn(root, [await outOf('lib'), await outOf('app')]), [true, true]);
    } finally {
      await s1.stop();
    }
  });

  test('an edited narinfo (NarHash, an added reference) is refused; a NAR whose bytes differ is cut off and nothing lands', async () => {
    const { root, drvs } = await consumer(['indep', 'app']);
    const indep = await outOf('indep');
    const app = await outOf('app');
    const lib = await outOf('lib');
    const copy = (name: string, edit: (dir: string) => void): string => {
      const d = join(dir, name);
      cpSync(fileCache, d, { recursive: true });
      edit(d);
      return `file://${d}`;
    };
    const narinfo = (d: string, p: string): string => join(d, `${hashOf(p)}.narinfo`);
    const hashEdited = copy('cache-narhash', (d) => {
      const f = narinfo(d, indep);
      writeFileSync(
        f,
        readFileSync(f, 'utf8').replace(/^NarHash: sha256:(.)/m, (_m, c: string) => `NarHash: sha256:${c === '0' ? '1' : '0'}`),
      );
    });
    const refEdited = copy('cache-reference', (d) => {
      const f = narinfo(d, app);
      writeFileSync(
        f,
        readFileSync(f, 'utf8').replace(/^References: (.*)$/m, (_m, refs: string) => `References: ${refs} ${indep.slice('/nix/store/'.length)}`),
      );
    });
    const narEdited = copy('cache-nar', (d) => {
      const url = /^URL: (.*)$/m.exec(readFileSync(narinfo(d, indep), 'utf8'))?.[1] as string;
      const compression = /^Compression: (.*)$/m.exec(readFileSync(narinfo(d, indep), 'utf8'))?.[1];
      assert.equal(compression, 'xz');
      const f = join(d, url);
      const nar = Buffer.from(execFileSync('xz', ['-dc', f]));
      const at = nar.indexOf('indep');
      assert.ok(at > 0);
      nar.write('INDEP', at);
      const xz = execFileSync('xz', ['-c'], { input: nar });
      writeFileSync(f, xz);
      // FileSize tells the compressed size (not attested); keep it true so only the NAR's bytes differ
      const ni = narinfo(d, indep);
      writeFileSync(ni, readFileSync(ni, 'utf8').replace(/^FileSize: \d+$/m, `FileSize: ${xz.length}`));
    });
    for (const [cache, path, code] of [
      [hashEdited, indep, 'content-mismatch'],
      [refEdited, app, 'unattested-path'],
    ] as const) {
      const s = await startServe(root, policy(either), [cache]);
      try {
        const g = await httpGet(`${s.url}/${hashOf(path)}.narinfo`);
        assert.equal(g.status, 404, g.body);
        const st = await status(s);
        assert.ok(
          st.lastRefusals.some((r) => r.path === path && r.codes.includes(code)),
          JSON.stringify(st.lastRefusals),
        );
      } finally {
        await s.stop();
      }
    }
    void lib;
    const s = await startServe(root, policy(either), [narEdited]);
    try {
      const r = await realise(root, s, [drvs[0] as string]);
      assert.notEqual(r.code, 0, 'a NAR with other bytes must not be installed');
      assert.deepEqual(await validIn(root, [indep]), [false]);
      const st = await status(s);
      assert.ok(st.narsCutOff >= 1, JSON.stringify(st));
      assert.ok(st.lastRefusals.some((x) => x.path === indep && x.codes.includes('content-mismatch')));
    } finally {
      await s.stop();
    }
  });

  test('verdict cache: reused across a restart, invalidated by a policy edit; 200 concurrent requests verify each derivation at most once; paths of a verified world are served from it', async () => {
    const { root } = await consumer(['top']);
    const ia = (await must('nix-instantiate', [...args, '-A', 'iaChain', '-A', 'leaves'], { env: nixEnv() })).stdout.trim().split('\n');
    const paths = (await must('nix-store', ['-q', '--outputs', ...ia], { env: nixEnv() })).stdout.trim().split('\n');
    assert.equal(paths.length, 18);
    // iaChain[i] depends on iaChain[0..i-1]; the 10 leaves on nothing: 11 paths are in no other's closure
    const chain = paths.slice(0, 8);
    const leaves = paths.slice(8);
    const pol = policy(both);
    const stateDir = tempDir('serve-state-');
    let s = await startServe(root, pol, [`file://${fileCache}`], stateDir);
    let first: Awaited<ReturnType<typeof status>>;
    try {
      const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => httpGet(`${s.url}/${hashOf(paths[i % paths.length] as string)}.narinfo`)));
      assert.deepEqual(
        answers.map((a) => a.status),
        answers.map(() => 200),
      );
      first = await status(s);
      // the 11 tops of their own closures need a verdict each; a chain member at most one (or none: served from a world above it)
      assert.ok(first.verdictsComputed >= 11 && first.verdictsComputed <= paths.length, JSON.stringify(first));
      assert.equal(first.served, 200);
    } finally {
      await s.stop();
    }
    s = await startServe(root, pol, [`file://${fileCache}`], stateDir);
    try {
      // after a restart, top of the chain first: its verdict comes from the cache, the 7 below from its world
      for (const p of [...chain].reverse()) assert.equal((await httpGet(`${s.url}/${hashOf(p)}.narinfo`)).status, 200);
      let st = await status(s);
      assert.equal(st.verdictsComputed, first.verdictsComputed, JSON.stringify(st));
      assert.equal(st.verdictsReused, 1);
      assert.equal(st.servedFromWorld - first.servedFromWorld, 7);
      for (const p of leaves) assert.equal((await httpGet(`${s.url}/${hashOf(p)}.narinfo`)).status, 200);
      st = await status(s);
      assert.equal(st.verdictsComputed, first.verdictsComputed);
      assert.equal(st.verdictsReused, 11);
      // a policy edit: neither the world nor the cached verdict of the old policy is used; the
      // world's target (chain top) is decided again under the new one, and serves chain[0]
      writeFileSync(pol, `${readFileSync(pol, 'utf8')}\n`);
      const g2 = await httpGet(`${s.url}/${hashOf(chain[0] as string)}.narinfo`);
      assert.equal(g2.status, 200);
      st = await status(s);
      assert.equal(st.verdictsComputed, first.verdictsComputed + 1);
      assert.equal(st.verdictsReused, 11);
      assert.equal(st.servedFromWorld - first.servedFromWorld, 8);
    } finally {
      await s.stop();
    }
    assert.equal(statSync(join(stateDir, 'signing-key.sec')).mode & 0o777, 0o600);
  });

  test('a new top-level derivation over a verified closure (its verdict seeded by the closure verdict): refused for a missing trace with the codes trace-verify gives', async () => {
    // A alone: B's lines are from a key the policy does not know, so nothing is disputed and the verdict of the chain's top can seed the next
    const pol = join(dir, 'policy-a-only.json');
    writeFileSync(pol, JSON.stringify({ keys: { A: { publicKey: A.keys.publicKey } }, trust: 'A' }));
    const expr = join(dir, 'new-top.nix');
    writeFileSync(
      expr,
      `{ salt, nondet }: let s = import ${join(FIXTURES, 'serve.nix')} { inherit salt nondet; }; in {
  untraced = derivation { name = "s-untraced"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "echo \${builtins.elemAt s.iaChain 7} > $out" ]; };
}`,
    );
    const root = join(tempDir('serve-consumer-'), 'store');
    const inst = async (a: string[]): Promise<string> => (await must('nix-instantiate', ['--store', root, ...a], { env: nixEnv() })).stdout.trim();
    const topD = await inst([...args, '-A', 'iaChain.7']);
    const newD = await inst([expr, ...args.slice(1), '-A', 'untraced']);
    const s = await startServe(root, pol, [`file://${fileCache}`]);
    try {
      const topOut = (await must('nix-store', ['--store', root, '-q', '--outputs', topD], { env: nixEnv() })).stdout.trim();
      assert.equal((await httpGet(`${s.url}/${hashOf(topOut)}.narinfo`)).status, 200);
      const newOut = (await must('nix-store', ['--store', root, '-q', '--outputs', newD], { env: nixEnv() })).stdout.trim();
      const g = await httpGet(`${s.url}/${hashOf(newOut)}.narinfo`);
      assert.equal(g.status, 404, g.body);
      const r = (await status(s)).lastRefusals.find((x) => x.path === newOut);
      assert.ok(r, JSON.stringify((await status(s)).lastRefusals));
      assert.equal(r.drv, newD);
      // trace-verify reads the .drv files from the host store
      await must('nix-instantiate', [expr, ...args.slice(1), '-A', 'untraced'], { env: nixEnv() });
      const tv = await run(VERIFY_CLI, [newD, '--policy', pol, '--cache', `file://${fileCache}`, '--no-local-store', '--json']);
      assert.equal(tv.code, 1, tv.stderr);
      const codes = [...new Set((JSON.parse(tv.stdout) as { problems: { code: string }[] }).problems.map((p) => p.code))].sort();
      assert.deepEqual([...r.codes].sort(), codes);
      assert.ok(codes.includes('no-bundle'), JSON.stringify(codes));
      // the closure's own top is still served (its verdict was not disturbed)
      assert.equal((await httpGet(`${s.url}/${hashOf(topOut)}.narinfo`)).status, 200);
    } finally {
      await s.stop();
    }
  });

  test('a seeded verdict is kept keyed on the traces its seed settled too: after a restart reused while they are unchanged, decided again once one below it changed', async () => {
    // A alone (nothing disputed, so chain[6]'s verdict leaves a seed); a cache of its own (a trace is deleted below)
    const pol = join(dir, 'policy-a-only-kept.json');
    writeFileSync(pol, JSON.stringify({ keys: { A: { publicKey: A.keys.publicKey } }, trust: 'A' }));
    const cache = join(dir, 'cache-seeded-kept');
    cpSync(fileCache, cache, { recursive: true });
    const { root } = await consumer(['top']);
    const ia = (await must('nix-instantiate', [...args, '-A', 'iaChain'], { env: nixEnv() })).stdout.trim().split('\n');
    const outs = (await must('nix-store', ['-q', '--outputs', ...ia], { env: nixEnv() })).stdout.trim().split('\n');
    const [six, seven] = [outs[6], outs[7]] as [string, string];
    const stateDir = tempDir('serve-state-');
    let s = await startServe(root, pol, [`file://${cache}`], stateDir);
    let first: Awaited<ReturnType<typeof status>>;
    try {
      // chain[6] first (a full verdict), then chain[7], above it: seeded, only its own derivation read
      for (const p of [six, seven]) assert.equal((await httpGet(`${s.url}/${hashOf(p)}.narinfo`)).status, 200);
      first = await status(s);
      assert.equal(first.verdictsComputed, 2, JSON.stringify(first));
    } finally {
      await s.stop();
    }
    s = await startServe(root, pol, [`file://${cache}`], stateDir);
    try {
      assert.equal((await httpGet(`${s.url}/${hashOf(seven)}.narinfo`)).status, 200);
      const st = await status(s);
      assert.equal(st.verdictsComputed, first.verdictsComputed, `chain[7]'s seeded verdict was kept: ${JSON.stringify(st)}`);
      assert.equal(st.verdictsReused, first.verdictsReused + 1);
    } finally {
      await s.stop();
    }
    // chain[3]'s trace deleted upstream: chain[7]'s kept verdict rests on it (through the seed), so it is not reused
    const tv = await run(VERIFY_CLI, [ia[7] as string, '--policy', pol, '--cache', `file://${cache}`, '--no-local-store', '--json']);
    assert.equal(tv.code, 0, tv.stderr);
    const entries = (JSON.parse(tv.stdout) as { entries: { drv: string; resolvedDrv: string }[] }).entries;
    const three = entries.find((e) => e.drv === ia[3]);
    assert.ok(three, tv.stdout);
    rmSync(join(cache, 'traces', hashOf(three.resolvedDrv)));
    s = await startServe(root, pol, [`file://${cache}`], stateDir);
    try {
      const before = await status(s);
      const g = await httpGet(`${s.url}/${hashOf(seven)}.narinfo`);
      assert.equal(g.status, 404, g.body);
      const st = await status(s);
      assert.equal(st.verdictsReused, before.verdictsReused, JSON.stringify(st));
      assert.equal(st.verdictsComputed, before.verdictsComputed + 1, JSON.stringify(st));
      assert.ok(
        st.lastRefusals.some((r) => r.path === seven && r.codes.includes('no-bundle')),
        JSON.stringify(st.lastRefusals),
      );
    } finally {
      await s.stop();
    }
  });

  test('a path with no local .drv: 404 by default; with --fetch-derivers, served once the Deriver closure fetched from the cache verifies', async () => {
    const { root } = await consumer(['indep']);
    const app = await outOf('app');
    const withDrvs = join(dir, 'cache-with-drvs');
    cpSync(fileCache, withDrvs, { recursive: true });
    // the .drv closure goes to the cache as store paths (what `nix copy --derivation` publishes)
    await must('nix', ['copy', '--to', `file://${withDrvs}`, '--derivation', drv.get('app') as string], { env: nixEnv() });
    const s = await startServe(root, policy(either), [`file://${withDrvs}`]);
    try {
      const g = await httpGet(`${s.url}/${hashOf(app)}.narinfo`);
      assert.equal(g.status, 404);
      assert.match(g.body, /no-derivation/);
    } finally {
      await s.stop();
    }
    const f = await startServe(root, policy(either), [`file://${withDrvs}`], tempDir('serve-state-'), ['--fetch-derivers']);
    try {
      const g = await httpGet(`${f.url}/${hashOf(app)}.narinfo`);
      assert.equal(g.status, 200, `${g.body}\n${JSON.stringify((await status(f)).lastRefusals)}`);
      assert.match(g.body, new RegExp(`^StorePath: ${app}$`, 'm'));
      assert.match(g.body, new RegExp(`^Deriver: ${(drv.get('app') as string).slice('/nix/store/'.length)}$`, 'm'));
      // the same path under 2-of-2 (B lied about lib): refused, however the .drv got here
      const pol = policy(both);
      const b = await startServe(root, pol, [`file://${withDrvs}`], tempDir('serve-state-'), ['--fetch-derivers']);
      try {
        assert.equal((await httpGet(`${b.url}/${hashOf(app)}.narinfo`)).status, 404);
      } finally {
        await b.stop();
      }
    } finally {
      await f.stop();
    }
  });

  test('a silent upstream is a 404 within the request deadline, never a hung Nix', async () => {
    const { root } = await consumer(['indep']);
    const silent = createServer(() => {
      // accepts and never answers
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const port = (silent.address() as AddressInfo).port;
    const s = await startServe(root, policy(either), [`http://127.0.0.1:${port}`], tempDir('serve-state-'), ['--request-timeout-ms', '500', '--retries', '0']);
    try {
      const t0 = Date.now();
      const g = await httpGet(`${s.url}/${hashOf(await outOf('indep'))}.narinfo`);
      assert.equal(g.status, 404, g.body);
      assert.ok(Date.now() - t0 < 10_000, `answered after ${Date.now() - t0} ms`);
      const st = await status(s);
      assert.ok(st.lastRefusals[0]?.codes.includes('CACHE_ERROR'), JSON.stringify(st.lastRefusals));
    } finally {
      await s.stop();
      silent.closeAllConnections();
      silent.close();
    }
  });

  test('from the nginx cache alone: narinfo, traces and NARs come over HTTP', async () => {
    const { root, drvs } = await consumer(['indep', 'capp']);
    const s = await startServe(root, policy(either), [nginx.url]);
    try {
      const r = await realise(root, s, drvs);
      assert.equal(r.code, 0, `${r.stderr}\n${JSON.stringify((await status(s)).lastRefusals)}`);
      const st = await status(s);
      assert.ok(st.narsServed >= 3, JSON.stringify(st));
      assert.deepEqual(await validIn(root, [await outOf('indep'), await outOf('lib')]), [true, true]);
    } finally {
      await s.stop();
    }
  });
});
