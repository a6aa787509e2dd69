// ci: nix (runs on every Nix: the host and the trixie and sid chroots; see scripts/run-tests.sh)
import assert from 'node:assert/strict';
import { closeSync, openSync, readFileSync, readdirSync, symlinkSync, writeFileSync, writeSync, existsSync, unlinkSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { parsePublicKey } from '../src/nix/nix-key.js';
import { nix32Encode } from '../src/nix/nix32.js';
import { checkBundle } from '../src/trace/bundle.js';
import {
  DAEMON_CLI,
  FIXTURES,
  hookReportsUnresolved,
  must,
  nixBuildWithHook,
  nixEnv,
  nixKeyPair,
  pathInfo,
  run,
  salt,
  sha256HexOf,
  sriToHex,
  startDaemon,
  tempDir,
  type DaemonHandle,
} from './helpers.js';

interface TraceJson {
  id: number;
  rdrv_path: string;
  rdrv_hash: string;
  drv_name: string;
  kind: string;
  key_fp: string;
  bundle: string;
  drvs: string[];
  outputs: { name: string; path: string; nar_hash: string; nar_size: number }[];
  inputs: { path: string; nar_hash: string; nar_size: number }[];
}

const ATTRS = ['ia3', 'deferred', 'multi', 'uses-dev', 'strange', 'fod'];

describe('trace-daemon captures real Nix builds', () => {
  let d: DaemonHandle;
  let s: string;
  let buildErr = '';
  let drvs: Map<string, string>; // attr-ish name -> udrv path
  let closureDrvs: string[];

  before(async () => {
    d = await startDaemon();
    s = salt();
    const fodHash = sha256HexOf(`fixed-${s}\n`);
    const args = [join(FIXTURES, 'scope.nix'), '--argstr', 'salt', s, '--argstr', 'fodHash', fodHash];
    const inst = await must('nix-instantiate', [...args, ...ATTRS.flatMap((a) => ['-A', a])], { env: nixEnv() });
    const roots = inst.stdout.trim().split('\n');
    closureDrvs = (await must('nix-store', ['-qR', ...roots], { env: nixEnv() })).stdout
      .trim()
      .split('\n')
      .filter((p) => p.endsWith('.drv'));
    drvs = new Map(closureDrvs.map((p) => [p.replace(/^.*?-/, '').replace(/\.drv$/, ''), p]));
    const b = await nixBuildWithHook(d.spool, [...args, ...ATTRS.flatMap((a) => ['-A', a])]);
    assert.equal(b.code, 0, b.stderr);
    buildErr = b.stderr;
    const f = await nixBuildWithHook(d.spool, [...args, '-A', 'fail']);
    assert.notEqual(f.code, 0, 'the failing derivation must fail');
    const p = await d.cli(['push', '--wait', '--json']);
    assert.equal(p.code, 0, p.stderr);
  });

  after(async () => {
    assert.equal(await d.stop(), 0, 'SIGTERM ends the daemon with exit 0');
  });

  async function show(path: string): Promise<TraceJson[]> {
    const r = await d.cli(['show', path, '--json']);
    assert.equal(r.code, 0, `show ${path}: ${r.stderr}`);
    return (JSON.parse(r.stdout) as { traces: TraceJson[] }).traces;
  }

  test('exactly one trace per resolved derivation, none for the failed build', async () => {
    assert.equal(closureDrvs.length, 11);
    const list = JSON.parse((await d.cli(['list', '--json', '--limit', '1000'])).stdout) as { traces: TraceJson[] };
    assert.equal(list.traces.length, closureDrvs.length, 'one trace per derivation built');
    assert.equal(new Set(list.traces.map((t) => t.rdrv_hash)).size, list.traces.length);
    for (const drv of closureDrvs) assert.equal((await show(drv)).length, 1, `${drv} has one trace`);
    assert.ok(!list.traces.some((t) => t.drv_name === 'fail'), 'no trace for the failed build');
    const st = JSON.parse((await d.cli(['status', '--json'])).stdout) as { traced: number; rejected: number; duplicates: number; spool: { pending: number } };
    assert.equal(st.traced, closureDrvs.length);
    assert.equal(st.rejected, 0);
    assert.equal(st.spool.pending, 0);
    // Nix 2.8 to 2.26 fire the hook twice for each build they resolve (ca-2, ca-3, deferred):
    // once for the resolved and once for the unresolved .drv; both map to one trace. 2.34
    // reports the resolved .drv only.
    assert.equal(st.duplicates, (await hookReportsUnresolved()) ? 3 : 0);
  });

  test('our resolved derivation is the one Nix wrote', async () => {
    const lines = [...buildErr.matchAll(/resolved derivation: '([^']+)' -> '([^']+)'/g)];
    assert.equal(lines.length, 3, 'ca-2, ca-3 and deferred are resolved; ca-1 has no inputs');
    for (const m of lines) {
      const [t] = await show(m[1] as string);
      assert.ok(t);
      assert.equal(t.rdrv_path, m[2], `resolution of ${m[1]}`);
      assert.ok(t.drvs.includes(m[2] as string));
      // the unresolved .drv is an alias only where the hook named it; show finds it either way
      assert.equal(t.drvs.includes(m[1] as string), await hookReportsUnresolved());
    }
  });

  test('kinds, outputs and inputs; NAR hashes equal nix path-info', async () => {
    const byName = new Map<string, TraceJson>();
    for (const drv of closureDrvs) {
      const [t] = await show(drv);
      assert.ok(t);
      byName.set(t.drv_name, t);
    }
    const kind = (n: string) => byName.get(n)?.kind;
    assert.equal(kind('fod'), 'fixed');
    assert.equal(kind('ia-1'), 'ia');
    assert.equal(kind('ca-1'), 'ca');
    assert.equal(kind('ca-3'), 'ca');
    assert.equal(kind('ia-deferred'), 'ia');
    assert.deepEqual(
      byName.get('multi')?.outputs.map((o) => o.name),
      ['dev', 'out'],
    );
    const paths = [...byName.values()].flatMap((t) => [...t.outputs.map((o) => o.path), ...t.inputs.map((i) => i.path)]);
    const infos = await pathInfo([...new Set(paths)]);
    for (const t of byName.values()) {
      for (const o of [...t.outputs, ...t.inputs]) {
        const info = infos.get(o.path);
        assert.ok(info, o.path);
        assert.equal(o.nar_hash, await sriToHex(info.narHash), `${t.drv_name}: NAR hash of ${o.path}`);
        assert.equal(o.nar_size, info.narSize);
      }
    }
    const out = (n: string, o = 'out') => byName.get(n)?.outputs.find((x) => x.name === o)?.path;
    const inputsOf = (n: string) => byName.get(n)?.inputs.map((i) => i.path) ?? [];
    assert.ok(inputsOf('ia-2').includes(out('ia-1') as string), 'ia-2 lists ia-1 as input');
    assert.ok(inputsOf('ia-3').includes(out('fod') as string), 'ia-3 lists the FOD output');
    assert.ok(inputsOf('ia-uses-dev').includes(out('multi', 'dev') as string), 'uses-dev lists multi.dev');
    assert.ok(inputsOf('ia-deferred').includes(out('ca-3') as string), 'deferred lists ca-3 output');
    assert.ok(!inputsOf('ia-uses-dev').includes(out('multi') as string), 'uses-dev does not list multi.out');
  });

  test('bundles verify with the key from nix key convert-secret-to-public, and only with it', async () => {
    const pub = parsePublicKey(d.keys.publicKey);
    const other = parsePublicKey((await nixKeyPair(tempDir(), 'other-1')).publicKey);
    const db = new Database(d.dbFile, { readonly: true });
    const rows = db.prepare('SELECT id, rdrv_hash, kind, bundle, statement FROM traces').all() as {
      id: number;
      rdrv_hash: string;
      kind: string;
      bundle: string;
      statement: Buffer;
    }[];
    assert.equal(rows.length, closureDrvs.length);
    for (const r of rows) {
      const c = checkBundle(r.bundle, [pub]);
      assert.ok(c.ok, `trace ${r.id}: ${c.ok ? '' : c.detail}`);
      assert.equal(c.value.statement.resolvedInputHash, r.rdrv_hash);
      assert.equal(c.value.statement.kind, r.kind);
      assert.ok(c.value.statementBytes.equals(r.statement), 'the bundle carries exactly the stored statement bytes');
      const outs = db.prepare('SELECT name, nar_hash FROM outputs WHERE trace_id = ?').all(r.id) as { name: string; nar_hash: string }[];
      for (const o of outs) assert.equal(c.value.statement.outputs.get(o.name)?.sha256, o.nar_hash);
      const wrong = checkBundle(r.bundle, [other]);
      assert.ok(!wrong.ok && wrong.reason === 'key-not-admitted');
      // flip one byte of the payload: the signature must fail
      const b = JSON.parse(r.bundle) as { dsseEnvelope: { payload: string } };
      const raw = Buffer.from(b.dsseEnvelope.payload, 'base64');
      raw[20] = (raw[20] as number) ^ 1;
      b.dsseEnvelope.payload = raw.toString('base64');
      const tampered = checkBundle(JSON.stringify(b), [pub]);
      assert.ok(!tampered.ok && tampered.reason === 'signature-invalid');
    }
    db.close();
  });

  test('replayed spool records add no trace', async () => {
    const ia1 = drvs.get('ia-1') as string;
    const before = JSON.parse((await d.cli(['status', '--json'])).stdout) as { database: { traces: number }; duplicates: number };
    for (let i = 0; i < 3; i++) writeFileSync(join(d.spool, `replay-${i}.json`), JSON.stringify({ v: 1, drv: ia1, outs: [] }));
    const pushed = await d.cli(['push', '--wait']);
    assert.equal(pushed.code, 0, pushed.stdout + pushed.stderr);
    const afterSt = JSON.parse((await d.cli(['status', '--json'])).stdout) as { database: { traces: number }; duplicates: number };
    assert.equal(afterSt.database.traces, before.database.traces);
    assert.equal(afterSt.duplicates, before.duplicates + 3);
    assert.deepEqual(
      readdirSync(d.spool).filter((n) => n !== 'rejected'),
      [],
    );
  });

  test('human-readable status, list and show', async () => {
    const st = await d.cli(['status']);
    assert.equal(st.code, 0);
    assert.match(st.stdout, /running \(pid \d+\)/);
    assert.match(st.stdout, new RegExp(`${closureDrvs.length} traces`));
    const ls = await d.cli(['list']);
    assert.equal(ls.code, 0, ls.stderr);
    assert.match(ls.stdout, /ia-deferred/);
    const sh = await d.cli(['show', drvs.get('multi') as string]);
    assert.equal(sh.code, 0, sh.stderr);
    assert.match(sh.stdout, /output dev/);
    const missing = await d.cli(['show', '/nix/store/00000000000000000000000000000000-nothing']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no trace/);
  });
});

describe('trace-daemon survives hostile spool records', () => {
  test('each bad record is moved aside with a reason; good ones are traced', async () => {
    const d = await startDaemon();
    try {
      const s = salt();
      // a real derivation to trace after the garbage
      const good = await nixBuildWithHook(tempDir(), [
        '-E',
        `derivation { name = "good-${s}"; system = builtins.currentSystem; builder = "/bin/sh"; args = ["-c" "echo ${s} > $out"]; }`,
      ]);
      assert.equal(good.code, 0, good.stderr);
      const goodDrv = (
        await must(
          'nix-instantiate',
          ['-E', `derivation { name = "good-${s}"; system = builtins.currentSystem; builder = "/bin/sh"; args = ["-c" "echo ${s} > $out"]; }`],
          { env: nixEnv() },
        )
      ).stdout.trim();

      // a truncated copy of a real .drv under a store-path name
      const fakeDrv = `/nix/store/${nix32Encode(Buffer.from(sha256HexOf(s), 'hex').subarray(0, 20))}-truncated-${s}.drv`;
      writeFileSync(fakeDrv, readFileSync(goodDrv, 'latin1').slice(0, 60), 'latin1');
      const outside = join(tempDir(), 'target.json');
      writeFileSync(outside, JSON.stringify({ v: 1, drv: goodDrv, outs: [] }));
      const bad: Record<string, string | null> = {
        'bad-json.json': '{"v":1,"drv":',
        'not-store.json': JSON.stringify({ v: 1, drv: '/etc/passwd', outs: [] }),
        'dotdot.json': JSON.stringify({ v: 1, drv: '/nix/store/../../etc/x.drv', outs: [] }),
        'sub-path.json': JSON.stringify({ v: 1, drv: goodDrv, outs: [`${goodDrv}/../x`] }),
        'dup-key.json': `{"v":1,"drv":${JSON.stringify(goodDrv)},"drv":"x","outs":[]}`,
        'extra-field.json': JSON.stringify({ v: 1, drv: goodDrv, outs: [], evil: true }),
        'huge.json': JSON.stringify({ v: 1, drv: goodDrv, outs: [], pad: 'x'.repeat(200_000) }),
        'truncated-drv.json': JSON.stringify({ v: 1, drv: fakeDrv, outs: [] }),
        'missing-drv.json': JSON.stringify({ v: 1, drv: `/nix/store/00000000000000000000000000000000-gone-${s}.drv`, outs: [] }),
        'symlink.json': null,
      };
      // write them while the daemon runs: the watcher must pick them up
      for (const [n, c] of Object.entries(bad)) {
        if (c === null) symlinkSync(outside, join(d.spool, n));
        else writeFileSync(join(d.spool, n), c);
      }
      writeFileSync(join(d.spool, 'good.json'), JSON.stringify({ v: 1, drv: goodDrv, outs: [] }));
      const p = await d.cli(['push', '--wait', '--json']);
      assert.equal(p.code, 0);
      const rejected = readdirSync(join(d.spool, 'rejected'));
      for (const n of Object.keys(bad)) {
        assert.ok(rejected.includes(n), `${n} moved aside`);
        assert.ok(rejected.includes(`${n}.reason`), `${n} has a reason`);
      }
      const reason = (n: string) => readFileSync(join(d.spool, 'rejected', `${n}.reason`), 'utf8');
      assert.match(reason('bad-json.json'), /bad-json\.json/);
      assert.match(reason('not-store.json'), /not in the store/);
      assert.match(reason('symlink.json'), /symlink/);
      assert.match(reason('huge.json'), /bytes, more than/);
      assert.match(reason('dup-key.json'), /duplicate key/);
      assert.match(reason('extra-field.json'), /unknown field "evil"/);
      assert.match(reason('truncated-drv.json'), /ATERM_INVALID|expected|unterminated/i);
      assert.ok(existsSync(outside), 'the symlink target is untouched');
      const shown = await d.cli(['show', goodDrv, '--json']);
      assert.equal(shown.code, 0, 'the good record was traced after the garbage');
      const st = JSON.parse((await d.cli(['status', '--json'])).stdout) as { rejected: number; spool: { rejected: number } };
      assert.equal(st.rejected, Object.keys(bad).length);
      unlinkSync(fakeDrv);
    } finally {
      await d.stop();
    }
  });

  test('a record copied in under its final name is read again while it is being written, not rejected', async () => {
    // `cp` (copyFileSync) creates the final name empty, then fills it: a scan in between saw an
    // empty record and rejected it for good, and that build's trace was never published
    const d = await startDaemon();
    try {
      const s = salt();
      const staging = tempDir();
      const b = await nixBuildWithHook(staging, [
        '-E',
        `derivation { name = "slow-copy-${s}"; system = builtins.currentSystem; builder = "/bin/sh"; args = ["-c" "echo ${s} > $out"]; }`,
      ]);
      assert.equal(b.code, 0, b.stderr);
      const [name] = readdirSync(staging);
      assert.ok(name);
      const body = readFileSync(join(staging, name));
      const fd = openSync(join(d.spool, name), 'w');
      try {
        // empty for a while, then half of it: the watcher fires at creation and the daemon reads
        await new Promise((r) => setTimeout(r, 300));
        writeSync(fd, body.subarray(0, 10));
        await new Promise((r) => setTimeout(r, 300));
        writeSync(fd, body.subarray(10));
      } finally {
        closeSync(fd);
      }
      const p = await d.cli(['push', '--wait', '--json']);
      assert.equal(p.code, 0, p.stdout + p.stderr);
      const st = JSON.parse((await d.cli(['status', '--json'])).stdout) as { traced: number; rejected: number };
      assert.deepEqual({ traced: st.traced, rejected: st.rejected }, { traced: 1, rejected: 0 }, d.stderr());
      // garbage is still rejected once it has stopped changing
      writeFileSync(join(d.spool, 'garbage.json'), '{"v":1,"drv":');
      const p2 = await d.cli(['push', '--wait', '--json']);
      assert.equal(p2.code, 0, p2.stdout + p2.stderr);
      assert.ok(existsSync(join(d.spool, 'rejected', 'garbage.json.reason')));
    } finally {
      await d.stop();
    }
  });

  test('a world-readable key and a bad config are refused with the field named', async () => {
    const dir = tempDir();
    const k = await nixKeyPair(dir, 'perm-1');
    const cfg = join(dir, 'c.json');
    writeFileSync(
      cfg,
      JSON.stringify({ signingKeyFile: k.secretFile, spoolDir: join(dir, 's'), stateDir: join(dir, 'st'), socket: join(dir, 'sock'), batchSize: 'many' }),
    );
    const r1 = await run(DAEMON_CLI, ['run', '--config', cfg]);
    assert.equal(r1.code, 2);
    assert.match(r1.stderr, /batchSize: must be integer/);
    writeFileSync(
      cfg,
      JSON.stringify({ signingKeyFile: k.secretFile, spoolDir: join(dir, 's'), stateDir: join(dir, 'st'), socket: join(dir, 'sock'), spoolDri: 'x' }),
    );
    const r2 = await run(DAEMON_CLI, ['run', '--config', cfg]);
    assert.match(r2.stderr, /unknown field "spoolDri"/);
    const { chmodSync } = await import('node:fs');
    chmodSync(k.secretFile, 0o644);
    writeFileSync(cfg, JSON.stringify({ signingKeyFile: k.secretFile, spoolDir: join(dir, 's'), stateDir: join(dir, 'st'), socket: join(dir, 'sock') }));
    const r3 = await run(DAEMON_CLI, ['run', '--config', cfg]);
    assert.equal(r3.code, 2);
    assert.match(r3.stderr, /readable by every user/);
  });

  test('clients say clearly when the daemon is not running', async () => {
    const r = await run(DAEMON_CLI, ['status', '--socket', join(tempDir(), 'none.sock')]);
    assert.equal(r.code, 3);
    assert.match(r.stderr, /not running/);
  });
});

void copyFileSync;

// The full-disk test lives in daemon-redteam.test.ts (with the retry-chain and log-line checks).

describe('trace-daemon without access to Nix\'s database (storeInfo "cli")', () => {
  test("every derivation still gets exactly one trace, CA builds through their outputs' deriver", async () => {
    const d = await startDaemon({ extraConfig: { storeInfo: 'cli' } });
    try {
      const s = salt();
      const fodHash = sha256HexOf(`fixed-${s}\n`);
      const args = [join(FIXTURES, 'scope.nix'), '--argstr', 'salt', s, '--argstr', 'fodHash', fodHash, '-A', 'ia3', '-A', 'deferred'];
      const inst = (await must('nix-instantiate', args, { env: nixEnv() })).stdout.trim().split('\n');
      const closure = (await must('nix-store', ['-qR', ...inst], { env: nixEnv() })).stdout
        .trim()
        .split('\n')
        .filter((p) => p.endsWith('.drv'));
      const b = await nixBuildWithHook(d.spool, args);
      assert.equal(b.code, 0, b.stderr);
      assert.equal((await d.cli(['push', '--wait'])).code, 0);
      const st = JSON.parse((await d.cli(['status', '--json'])).stdout) as { store: { mode: string }; database: { traces: number }; rejected: number };
      assert.equal(st.store.mode, 'cli');
      assert.equal(st.database.traces, closure.length);
      assert.equal(st.rejected, 0);
      for (const m of b.stderr.matchAll(/resolved derivation: '([^']+)' -> '([^']+)'/g)) {
        const shown = JSON.parse((await d.cli(['show', m[1] as string, '--json'])).stdout) as { traces: { rdrv_path: string }[] };
        assert.equal(shown.traces[0]?.rdrv_path, m[2]);
      }
    } finally {
      await d.stop();
    }
  });
});
