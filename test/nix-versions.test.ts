// ci: nix (runs on every Nix: the host and the trixie and sid chroots; see scripts/run-tests.sh)
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { Capturer } from '../daemon/capture.js';
import { AutoStoreInfo, NixCliStoreInfo, NixDbStoreInfo } from '../daemon/store-info.js';
import { parseNixVersion, parsePathInfoJson, parseRealisationsJson, pathInfoJsonArgs, realisationInstallable } from '../src/nix/nix-cli-json.js';
import { DrvLoader } from '../src/store/drv-loader.js';
import {
  FIXTURES,
  hookReportsUnresolved,
  must,
  nixBuildWithHook,
  nixEnv,
  nixVersionNow,
  run,
  salt,
  sha256HexOf,
  startDaemon,
  tempDir,
  waitFor,
} from './helpers.js';

// What each Nix prints, as measured on Debian's 2.8.0, 2.26.3 and 2.34.8 (README, "Supported Nix versions").
const P = '/nix/store/acr20r4gyz86mhizpj9h1vpkyn1c7r6g-ia-3';
const MISSING = '/nix/store/00000000000000000000000000000000-x';
const INFO = { narHash: 'sha256-O+1KcTdUdMJ9BYPZoXjXOjwvVMAsa582WqxlUL/Gk5A=', narSize: 224, registrationTime: 1796084218, signatures: [], ultimate: true };
const SHAPES: Record<string, string> = {
  '2.8 array': JSON.stringify([
    { path: P, deriver: `${P}.drv`, references: [`${P}-dep`], ...INFO },
    { path: MISSING, valid: false },
  ]),
  '2.26 keyed object': JSON.stringify({ [MISSING]: null, [P]: { ca: null, deriver: `${P}.drv`, references: [`${P}-dep`], ...INFO } }),
  '2.34 --json-format 1': JSON.stringify({
    [MISSING]: null,
    [P]: { ca: null, deriver: `${P}.drv`, references: [`${P}-dep`], storeDir: '/nix/store', version: 1, ...INFO },
  }),
  '2.34 --json-format 2': JSON.stringify({
    info: { [P.slice(11)]: { ca: null, deriver: `${P.slice(11)}.drv`, references: [`${P.slice(11)}-dep`], storeDir: '/nix/store', version: 2, ...INFO } },
    storeDir: '/nix/store',
    version: 2,
  }),
};

describe('Nix CLI JSON in every shape', () => {
  for (const [name, text] of Object.entries(SHAPES)) {
    test(`path-info: ${name}`, () => {
      const m = parsePathInfoJson(text);
      assert.deepEqual([...m.keys()], [P], 'the missing path is left out');
      const e = m.get(P);
      assert.equal(e?.narHash, INFO.narHash);
      assert.equal(e?.narSize, 224);
      assert.deepEqual(e?.references, [`${P}-dep`]);
      assert.equal(e?.deriver, `${P}.drv`);
    });
  }

  test('path-info: malformed output is a STORE_QUERY_FAILED error naming the field (the store failed, not the record), never a TypeError', () => {
    for (const bad of [
      '',
      'null',
      '42',
      '[{"valid":true}]',
      JSON.stringify({ [P]: { narHash: 1, narSize: 1 } }),
      JSON.stringify({ [P]: { narHash: 'x', narSize: -1 } }),
      JSON.stringify({ [P]: 'x' }),
    ]) {
      assert.throws(() => parsePathInfoJson(bad), { code: 'STORE_QUERY_FAILED' }, bad);
    }
  });

  test('versions: Nix and Lix, and what follows from them', () => {
    const v28 = parseNixVersion('nix (Nix) 2.8.0\n');
    const v226 = parseNixVersion('nix (Nix) 2.26.3');
    const v234 = parseNixVersion('nix (Nix) 2.34.8');
    const lix = parseNixVersion('nix (Lix, like Nix) 2.93.3');
    assert.deepEqual([v28.major, v28.minor, v28.patch, v28.flavor], [2, 8, 0, 'nix']);
    assert.equal(lix.flavor, 'lix');
    assert.deepEqual(pathInfoJsonArgs(v28), ['--json']);
    assert.deepEqual(pathInfoJsonArgs(v226), ['--json']);
    assert.deepEqual(pathInfoJsonArgs(v234), ['--json', '--json-format', '1']);
    assert.deepEqual(pathInfoJsonArgs(lix), ['--json']);
    assert.equal(realisationInstallable(v28, `${P}.drv`), `${P}.drv`);
    assert.equal(realisationInstallable(v226, `${P}.drv`), `${P}.drv^*`);
    assert.throws(() => parseNixVersion('command not found'), { code: 'STORE_QUERY_FAILED' });
  });

  test('realisations: ids and basenames; opaque paths carry none', () => {
    const hex = 'a5c6ec191e6b1db69418fee3230839642e8bd634cf247f2ba2a44dd947a8816f';
    const text = JSON.stringify([
      { opaquePath: `${P}.drv` },
      { dependentRealisations: {}, id: `sha256:${hex}!out`, outPath: 'z0ajbjdi5wzxlsxxxsl94gsp1jkn84sc-ca-2', signatures: [] },
    ]);
    assert.deepEqual(parseRealisationsJson(text, '/nix/store'), [
      { drvHashHex: hex, output: 'out', outPath: '/nix/store/z0ajbjdi5wzxlsxxxsl94gsp1jkn84sc-ca-2' },
    ]);
    for (const bad of ['{}', '[1]', '[{"id":"sha256:xyz!out","outPath":"a"}]', `[{"id":"sha256:${hex}!out"}]`]) {
      assert.throws(() => parseRealisationsJson(bad, '/nix/store'), { code: 'STORE_QUERY_FAILED' }, bad);
    }
  });
});

/** nix-build arguments for test/fixtures/scope.nix, freshly salted, with the given attributes. */
function scopeArgs(attrs: readonly string[]): string[] {
  const s = salt();
  return [join(FIXTURES, 'scope.nix'), '--argstr', 'salt', s, '--argstr', 'fodHash', sha256HexOf(`fixed-${s}\n`), ...attrs.flatMap((a) => ['-A', a])];
}

/** A fixture closure built without our hook; per built .drv, the OUT_PATHS Nix reported. */
async function buildClosure(): Promise<{ resolvedOf: Map<string, string>; outs: Map<string, string[]>; built: string[] }> {
  const args = scopeArgs(['ia3', 'deferred', 'multi', 'uses-dev']);
  const spool = tempDir('convention-spool-');
  const b = await nixBuildWithHook(spool, args);
  assert.equal(b.code, 0, b.stderr);
  const resolvedOf = new Map([...b.stderr.matchAll(/resolved derivation: '([^']+)' -> '([^']+)'/g)].map((m) => [m[1] as string, m[2] as string]));
  assert.equal(resolvedOf.size, 3, 'ca-2, ca-3 and deferred are resolved');
  const outs = new Map<string, string[]>();
  for (const f of readdirSync(spool)) {
    const r = JSON.parse(readFileSync(join(spool, f), 'utf8')) as { drv: string; outs: string[] };
    if (r.outs.length === 0) continue;
    outs.set(resolvedOf.get(r.drv) ?? r.drv, [...r.outs].sort());
  }
  return { resolvedOf, outs, built: [...outs.keys()] };
}

type Record_ = { drv: string; outs: string[] };
/** Every calling convention Nix has used for a build it resolved (U unresolved, R resolved). */
const CONVENTIONS: Record<string, (u: string, r: string, outs: string[]) => Record_[]> = {
  // 2.8: resolved .drv with empty OUT_PATHS, then the unresolved one
  'Nix 2.8': (u, r, outs) => [
    { drv: r, outs: [] },
    { drv: u, outs },
  ],
  // 2.26: both with OUT_PATHS, multi-output paths in no fixed order
  'Nix 2.26': (u, r, outs) => [
    { drv: r, outs },
    { drv: u, outs: [...outs].reverse() },
  ],
  // 2.34: once, resolved only
  'Nix 2.34': (_u, r, outs) => [{ drv: r, outs }],
  // a replayed spool can bring them in any order
  'unresolved first': (u, r, outs) => [
    { drv: u, outs },
    { drv: r, outs },
  ],
};

describe('every hook calling convention gives exactly one trace per resolved derivation', () => {
  let closure: Awaited<ReturnType<typeof buildClosure>> | undefined;
  const get = async (): Promise<Awaited<ReturnType<typeof buildClosure>>> => (closure ??= await buildClosure());

  for (const storeInfo of ['db', 'cli'] as const) {
    for (const [name, convention] of Object.entries(CONVENTIONS)) {
      test(`${name}, storeInfo ${storeInfo}`, async () => {
        const c = await get();
        const unresolvedOf = new Map([...c.resolvedOf].map(([u, r]) => [r, u]));
        const d = await startDaemon({ extraConfig: { storeInfo } });
        try {
          // each build's records arrive in the convention's order: all first records, then
          // all second ones (one push each: order within a build is what matters)
          const perBuild = c.built.map((r) => {
            const u = unresolvedOf.get(r);
            return u === undefined ? [{ drv: r, outs: c.outs.get(r) ?? [] }] : convention(u, r, c.outs.get(r) ?? []);
          });
          for (let phase = 0, i = 0; perBuild.some((recs) => recs.length > phase); phase++) {
            for (const recs of perBuild) {
              const rec = recs[phase];
              if (rec !== undefined) writeFileSync(join(d.spool, `rec-${String(i++).padStart(3, '0')}.json`), JSON.stringify({ v: 1, ...rec }));
            }
            assert.equal((await d.cli(['push', '--wait'])).code, 0);
          }
          const st = JSON.parse((await d.cli(['status', '--json'])).stdout) as {
            store: { mode: string };
            database: { traces: number };
            rejected: number;
            spool: { pending: number };
          };
          assert.equal(st.store.mode, storeInfo);
          assert.equal(st.rejected, 0, d.stderr());
          assert.equal(st.spool.pending, 0);
          assert.equal(st.database.traces, c.built.length, 'one trace per resolved derivation');
          const show = async (p: string): Promise<{ id: number; rdrv_path: string; outputs: { path: string }[] }> => {
            const sh = await d.cli(['show', p, '--json']);
            assert.equal(sh.code, 0, `show ${p}: ${sh.stderr}`);
            const traces = (JSON.parse(sh.stdout) as { traces: { id: number; rdrv_path: string; outputs: { path: string }[] }[] }).traces;
            assert.equal(traces.length, 1, p);
            return traces[0] as (typeof traces)[number];
          };
          // every build: its outputs, from the database (one trace per .drv Nix built)
          const db = new Database(d.dbFile, { readonly: true });
          try {
            for (const r of c.built) {
              const outs = db
                .prepare<[string], { path: string }>(
                  'SELECT o.path AS path FROM trace_drvs t JOIN outputs o ON o.trace_id = t.trace_id WHERE t.drv_path = ? ORDER BY o.path',
                )
                .all(r)
                .map((o) => o.path);
              assert.deepEqual(outs, c.outs.get(r), `outputs of ${r}`);
            }
          } finally {
            db.close();
          }
          // the builds Nix resolved: our resolution is Nix's, and show finds the trace from both
          for (const [u, r] of c.resolvedOf) {
            const t = await show(r);
            assert.equal(t.rdrv_path, r, `${u} resolves to ${r}`);
            assert.equal((await show(u)).id, t.id, `show ${u}`);
          }
        } finally {
          await d.stop();
        }
      });
    }
  }
});

describe('store info on this Nix', () => {
  test('cli and database agree on path infos; a missing path is left out, not an error', async () => {
    const c = await buildClosure();
    const paths = [...c.outs.values()].flat();
    const cli = await new NixCliStoreInfo().pathInfos([...paths, '/nix/store/00000000000000000000000000000000-missing']);
    const db = new NixDbStoreInfo('/nix/var/nix/db/db.sqlite');
    try {
      const fromDb = await db.pathInfos(paths);
      assert.equal(cli.size, paths.length);
      for (const p of paths) assert.deepEqual(cli.get(p), fromDb.get(p), p);
    } finally {
      db.close();
    }
  });

  test('path-info with the arguments we pass prints no deprecation warning', async () => {
    const c = await buildClosure();
    const r = await run('nix', ['path-info', ...pathInfoJsonArgs(await nixVersionNow()), ...(c.outs.values().next().value ?? [])], { env: nixEnv() });
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /deprecated/);
  });

  test('cli mode resolves an unresolved .drv through nix realisation info', async () => {
    const c = await buildClosure();
    const store = new NixCliStoreInfo();
    const capturer = new Capturer(new DrvLoader(), store);
    for (const [u, r] of c.resolvedOf) assert.equal((await capturer.resolvedPath(u)).rdrvPath, r);
    // an unbuilt CA derivation has no realisation: resolution says so, it is not a store failure
    const s = salt();
    const expr = (n: string, dep: string) =>
      `derivation { name = "${n}-${s}"; system = builtins.currentSystem; builder = "/bin/sh"; args = ["-c" "echo ${s} ${dep} > $out"]; __contentAddressed = true; outputHashMode = "recursive"; outputHashAlgo = "sha256"; }`;
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a Nix antiquotation, not a JS template
    const unbuilt = (await must('nix-instantiate', ['-E', `let a = ${expr('a', '')}; in ${expr('b', '${a}')}`], { env: nixEnv() })).stdout.trim();
    await assert.rejects(capturer.resolvedPath(unbuilt), { code: 'RESOLUTION_FAILED' });
  });

  test('auto mode picks up a Nix database that appears after start (a fresh store)', async () => {
    const dir = tempDir('fresh-store-');
    const dbPath = join(dir, 'db.sqlite');
    const store = new AutoStoreInfo(dbPath, new NixCliStoreInfo(), 50);
    try {
      assert.equal(store.mode, 'cli');
      const src = new Database('/nix/var/nix/db/db.sqlite', { readonly: true });
      await src.backup(dbPath);
      src.close();
      // it polls every 50 ms: the switch is the event waited for (a wait that never ends fails)
      await waitFor(() => store.mode === 'db', 10_000, 'the switch to the database');
    } finally {
      store.close();
    }
  });

  test('the hook is run as measured for this version', async () => {
    // guards the version table the tests above rely on: 13 hook runs for 10 builds where
    // Nix reports the unresolved .drv too, 10 where it does not
    const spool = tempDir('hook-count-');
    const b = await nixBuildWithHook(spool, scopeArgs(['ia3', 'deferred', 'multi', 'uses-dev', 'fod']));
    assert.equal(b.code, 0, b.stderr);
    assert.equal(readdirSync(spool).length, (await hookReportsUnresolved()) ? 13 : 10);
  });
});

describe('a store failure never costs a record', () => {
  test('cli mode without a working nix: records stay in the spool, counted, and are traced once nix is back', async () => {
    const c = await buildClosure();
    // a PATH with node and no nix: every store query fails
    const bin = tempDir('no-nix-');
    symlinkSync(process.execPath, join(bin, 'node'));
    const d = await startDaemon({ extraConfig: { storeInfo: 'cli' }, env: { ...process.env, PATH: bin } });
    try {
      const [u, r] = [...c.resolvedOf][0] as [string, string];
      writeFileSync(join(d.spool, 'a.json'), JSON.stringify({ v: 1, drv: r, outs: c.outs.get(r) }));
      writeFileSync(join(d.spool, 'b.json'), JSON.stringify({ v: 1, drv: u, outs: c.outs.get(r) }));
      d.cli(['push']).catch(() => undefined);
      await waitFor(
        async () => {
          const st = JSON.parse((await d.cli(['status', '--json'])).stdout) as { transientErrors: number };
          return st.transientErrors > 0;
        },
        30_000,
        'the store failure in status',
      );
      const st = JSON.parse((await d.cli(['status', '--json'])).stdout) as {
        lastError?: { message: string };
        rejected: number;
        skipped: number;
        database: { traces: number };
      };
      assert.match(st.lastError?.message ?? '', /nix/);
      assert.equal(st.rejected, 0);
      assert.equal(st.skipped, 0);
      assert.equal(st.database.traces, 0);
      assert.deepEqual(
        readdirSync(d.spool)
          .filter((n) => n.endsWith('.json'))
          .sort(),
        ['a.json', 'b.json'],
        'nothing deleted, nothing moved aside',
      );
    } finally {
      await d.stop();
    }
    // the same state directory with nix on PATH again: both records end as one trace
    const d2 = await startDaemon({ dir: d.dir, extraConfig: { storeInfo: 'cli' } });
    try {
      assert.equal((await d2.cli(['push', '--wait'])).code, 0);
      const st = JSON.parse((await d2.cli(['status', '--json'])).stdout) as { database: { traces: number }; rejected: number };
      assert.equal(st.database.traces, 1);
      assert.equal(st.rejected, 0);
      assert.deepEqual(
        readdirSync(d2.spool).filter((n) => n.endsWith('.json')),
        [],
      );
    } finally {
      await d2.stop();
    }
  });
});
