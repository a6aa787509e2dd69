// ci: nix (runs on every Nix: the host and the trixie and sid chroots; see scripts/run-tests.sh)
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { appendLines } from '../src/cache/backend.js';
import { HttpCache } from '../src/cache/http-cache.js';
import { S3Cache, signV4 } from '../src/cache/s3-cache.js';
import { parsePublicKey, verifyDetached } from '../src/nix/nix-key.js';
import { buildTraceFingerprint } from '../src/nix/build-trace.js';
import { checkBundle } from '../src/trace/bundle.js';
import {
  FIXTURES,
  ROOT,
  flipSignature,
  must,
  nixBuildWithHook,
  pathInfo,
  requireOrSkip,
  setEnv,
  nixEnv,
  run,
  salt,
  startDaemon,
  tempDir,
  VERIFY_CLI,
  waitFor,
  type DaemonHandle,
} from './helpers.js';
import { MOTO_VERSION, MOTO_WHY, motoChecksIfMatch, startMoto } from './moto.js';
import { startNginx, type NginxCache } from './nginx.js';

function traceFiles(root: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let names: string[] = [];
  try {
    names = readdirSync(join(root, 'traces'));
  } catch {
    return out;
  }
  for (const n of names)
    if (!n.includes('.tmp') && !n.endsWith('.lock'))
      out.set(
        n,
        readFileSync(join(root, 'traces', n), 'utf8')
          .split('\n')
          .filter(Boolean),
      );
  return out;
}

async function buildMany(d: DaemonHandle, n: number, prefix: string): Promise<string[]> {
  const args = [join(FIXTURES, 'many.nix'), '--argstr', 'salt', salt(), '--arg', 'n', String(n), '--argstr', 'prefix', prefix];
  const drvs = (await must('nix-instantiate', args, { env: nixEnv() })).stdout.trim().split('\n');
  const b = await nixBuildWithHook(d.spool, args);
  assert.equal(b.code, 0, b.stderr);
  return drvs;
}

async function status(
  d: DaemonHandle,
): Promise<{ caches: { url: string; pending: number; failed: number; done: number; lastError: { message: string } | null }[] }> {
  return JSON.parse((await d.cli(['status', '--json'])).stdout) as never;
}

test("SigV4 signing reproduces AWS's published example (GET Object, virtual-hosted)", () => {
  const h = signV4({
    method: 'GET',
    url: new URL('http://examplebucket.s3.amazonaws.com/test.txt'),
    host: 'examplebucket.s3.amazonaws.com',
    body: Buffer.alloc(0),
    headers: { Range: 'bytes=0-9' },
    region: 'us-east-1',
    creds: { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' },
    date: new Date('2013-05-24T00:00:00Z'),
  });
  assert.match(h['authorization'] ?? '', /Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41$/);
});

describe('publishing to a file:// cache and to nginx (WebDAV PUT with conditional writes)', () => {
  let nginx: NginxCache;
  let fileCache: string;
  let d: DaemonHandle;

  before(async () => {
    nginx = await startNginx();
    fileCache = join(tempDir('file-cache-'), 'cache');
    d = await startDaemon({ extraConfig: { caches: [{ url: `file://${fileCache}` }, { url: nginx.url }], uploadOutputs: true } });
  });
  after(async () => {
    await d.stop();
    await nginx.stop();
  });

  test('outputs then traces land in both caches; stock Nix reads the outputs back; traces verify', async () => {
    const s = salt();
    const fodHash = (await import('node:crypto')).createHash('sha256').update(`fixed-${s}\n`).digest('hex');
    const args = [join(FIXTURES, 'scope.nix'), '--argstr', 'salt', s, '--argstr', 'fodHash', fodHash, '-A', 'ia3', '-A', 'deferred'];
    const b = await nixBuildWithHook(d.spool, args);
    assert.equal(b.code, 0, b.stderr);
    const outs = b.stdout.trim().split('\n');
    const p = await d.cli(['push', '--wait']);
    assert.equal(p.code, 0, p.stdout + p.stderr);
    for (const store of [`file://${fileCache}`, nginx.url]) {
      const infos = await pathInfo(outs, ['--store', store]);
      assert.equal(infos.size, outs.length, `${store} serves every output`);
    }
    const pub = parsePublicKey(d.keys.publicKey);
    for (const root of [fileCache, nginx.root]) {
      const files = traceFiles(root);
      assert.ok(files.size >= 8, `traces in ${root}`);
      for (const [h, lines] of files) {
        assert.equal(lines.length, 1, `${h}: one line per key`);
        const c = checkBundle(lines[0] as string, [pub]);
        assert.ok(c.ok && c.value.statement.resolvedInputHash === h);
      }
    }
    // the consumer side: the whole closure verifies from each cache alone
    const policy = join(tempDir(), 'p.json');
    (await import('node:fs')).writeFileSync(policy, JSON.stringify({ keys: { b: { publicKey: d.keys.publicKey } }, trust: 'b' }));
    const drv = (await must('nix-instantiate', [...args.slice(0, 7), '-A', 'deferred'], { env: nixEnv() })).stdout.trim();
    for (const store of [`file://${fileCache}`, nginx.url]) {
      const v = await run(VERIFY_CLI, [drv, '--policy', policy, '--cache', store]);
      assert.equal(v.code, 0, `${store}: ${v.stdout}${v.stderr}`);
    }
    const st = await status(d);
    assert.equal(st.caches.length, 2, 'both caches are in the status');
    for (const c of st.caches) assert.equal(c.pending, 0);
  });

  test('trace-verify reads a closure of 403 derivations from nginx (default and worker paths) and finds a trace tampered there', async () => {
    const args = [join(ROOT, 'bench/fixtures/closure.nix'), '--argstr', 'salt', salt(), '--arg', 'chunks', '2', '--arg', 'width', '200'];
    for (const part of ['groups', 'top']) {
      const b = await nixBuildWithHook(d.spool, [...args, '-A', part]);
      assert.equal(b.code, 0, b.stderr);
    }
    const p = await d.cli(['push', '--wait']);
    assert.equal(p.code, 0, p.stdout + p.stderr);
    const top = (await must('nix-instantiate', [...args, '-A', 'top'], { env: nixEnv() })).stdout.trim();
    const policy = join(tempDir(), 'p.json');
    writeFileSync(policy, JSON.stringify({ keys: { b: { publicKey: d.keys.publicKey } }, trust: 'b' }));
    // BUILDTRACE_POOL_MIN=0: worker threads and prefetching from the first derivation on
    for (const env of [{}, { BUILDTRACE_POOL_MIN: '0' }]) {
      const v = await run(VERIFY_CLI, [top, '--policy', policy, '--cache', nginx.url, '--json'], { env: { ...process.env, ...env } });
      assert.equal(v.code, 0, v.stdout + v.stderr);
      const r = JSON.parse(v.stdout) as { verified: boolean; derivationsChecked: number; signers: string[] };
      assert.equal(r.verified, true);
      assert.equal(r.derivationsChecked, 403);
      assert.deepEqual(r.signers, ['b']);
      assert.equal(v.stderr, '', 'no progress line when stderr is not a terminal');
    }
    // on a terminal (script(1) gives it one): a progress line while reading, then while checking
    const tty = await run('script', ['-qec', `${VERIFY_CLI} ${top} --policy ${policy} --cache ${nginx.url} --json`, '/dev/null']);
    assert.equal(tty.code, 0, tty.stdout);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the terminal escape is what is checked
    assert.match(tty.stdout, /\rtrace-verify: reading derivations: 256\x1b\[K/);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the terminal escape is what is checked
    assert.match(tty.stdout, /\rtrace-verify: 403\/403 derivations checked\x1b\[K\r?\n/);
    // a trace tampered on the server is found through the same path
    const db = new (await import('better-sqlite3')).default(d.dbFile, { readonly: true });
    const victim = (db.prepare("SELECT rdrv_hash FROM traces WHERE drv_name = 'group-1'").get() as { rdrv_hash: string }).rdrv_hash;
    db.close();
    const file = join(nginx.root, 'traces', victim);
    writeFileSync(file, flipSignature(readFileSync(file, 'utf8')));
    const bad = await run(VERIFY_CLI, [top, '--policy', policy, '--cache', nginx.url, '--json'], { env: { ...process.env, BUILDTRACE_POOL_MIN: '0' } });
    assert.equal(bad.code, 1, bad.stdout + bad.stderr);
    const problems = (JSON.parse(bad.stdout) as { problems: { code: string; drv: string }[] }).problems;
    assert.ok(
      problems.some((x) => x.code === 'signature-invalid' && x.drv.endsWith('-group-1.drv')),
      JSON.stringify(problems),
    );
  });

  test('nginx stopped during 100 builds: status reports the outage, every trace arrives once after', async () => {
    await nginx.stop();
    const drvs = await buildMany(d, 100, 'outage');
    await waitFor(
      async () => (await status(d)).caches.some((c) => c.url === nginx.url && c.pending >= 100 && c.lastError !== null),
      30_000,
      'outage in status',
    );
    const st = await status(d);
    const n = st.caches.find((c) => c.url === nginx.url);
    // outputs go first (uploadOutputs): the first failure is Nix's own `nix copy` finding nobody listening (curl's wording differs by version: "Couldn't" / "Could not")
    assert.match(n?.lastError?.message ?? '', /^nix copy --to http:\/\/127\.0\.0\.1:\d+: .*Could(?:n't| not) connect to server/);
    const human = await d.cli(['status']);
    assert.match(human.stdout, /last error/);
    const p1 = await d.cli(['push', '--wait']);
    assert.equal(p1.code, 1, 'push --wait reports the failure while the cache is down');
    await nginx.start();
    const p2 = await d.cli(['push', '--wait']);
    assert.equal(p2.code, 0, p2.stdout);
    const files = traceFiles(nginx.root);
    const db = new (await import('better-sqlite3')).default(d.dbFile, { readonly: true });
    const hashes = drvs.map((p) => (db.prepare('SELECT rdrv_hash FROM traces WHERE rdrv_path = ?').get(p) as { rdrv_hash: string }).rdrv_hash);
    db.close();
    for (const h of hashes) assert.equal(files.get(h)?.length, 1, `traces/${h} has exactly one line`);
  });

  test('5xx answers and a slow server delay publication, never lose it', async () => {
    nginx.setFault('fail503', true);
    const drvs = await buildMany(d, 20, 'fivexx');
    await waitFor(async () => /503/.test((await status(d)).caches.find((c) => c.url === nginx.url)?.lastError?.message ?? ''), 30_000, '503 in status');
    nginx.setFault('fail503', false);
    nginx.setFault('slow', true);
    const p = await d.cli(['push', '--wait']);
    nginx.setFault('slow', false);
    assert.equal(p.code, 0, p.stdout);
    assert.equal(drvs.length, 20);
    const db = new (await import('better-sqlite3')).default(d.dbFile, { readonly: true });
    const hashes = drvs.map((p) => (db.prepare('SELECT rdrv_hash FROM traces WHERE rdrv_path = ?').get(p) as { rdrv_hash: string }).rdrv_hash);
    db.close();
    const files = traceFiles(nginx.root);
    // each of the 20 is there, once: nothing lost to the 503s, nothing doubled by the retries
    for (const h of hashes) assert.equal(files.get(h)?.length, 1, `traces/${h} has exactly one line`);
    for (const lines of files.values()) assert.equal(lines.length, 1);
  });

  test('5xx on the trace objects alone (the outputs are accepted): the traces wait, none is lost', async () => {
    nginx.setFault('fail503traces', true);
    let drvs: string[];
    try {
      drvs = await buildMany(d, 5, 'trace503');
      // the failure is the traces' own PUT, not the outputs' copy
      await waitFor(
        async () => /PUT \S*\/traces\/\S*: HTTP 503/.test((await status(d)).caches.find((c) => c.url === nginx.url)?.lastError?.message ?? ''),
        30_000,
        'a trace PUT refused with 503 in status',
      );
    } finally {
      nginx.setFault('fail503traces', false);
    }
    const p = await d.cli(['push', '--wait']);
    assert.equal(p.code, 0, p.stdout);
    const db = new (await import('better-sqlite3')).default(d.dbFile, { readonly: true });
    const hashes = drvs.map((x) => (db.prepare('SELECT rdrv_hash FROM traces WHERE rdrv_path = ?').get(x) as { rdrv_hash: string }).rdrv_hash);
    db.close();
    assert.equal(hashes.length, 5);
    const files = traceFiles(nginx.root);
    for (const h of hashes) assert.equal(files.get(h)?.length, 1, `traces/${h} has exactly one line`);
  });
});

describe('two daemons with different keys publish the same derivations at the same time', () => {
  test('every resolved derivation ends with both lines, each once (file:// lock and nginx 412)', async () => {
    const nginx = await startNginx();
    const fileCache = join(tempDir('shared-cache-'), 'cache');
    const caches = [{ url: `file://${fileCache}` }, { url: nginx.url }];
    const [d1, d2] = await Promise.all([
      startDaemon({ keyName: 'conc-1', extraConfig: { caches } }),
      startDaemon({ keyName: 'conc-2', extraConfig: { caches } }),
    ]);
    try {
      const staging = tempDir('staging-');
      const args = [join(FIXTURES, 'many.nix'), '--argstr', 'salt', salt(), '--arg', 'n', '60', '--argstr', 'prefix', 'conc'];
      const b = await nixBuildWithHook(staging, args);
      assert.equal(b.code, 0);
      // as trace-hook does: a temp name, then rename (a copy under the final name can be read
      // half written; the daemon gives such a record a grace period, see daemon.test.ts)
      for (const f of readdirSync(staging)) {
        for (const d of [d1, d2]) {
          writeFileSync(join(d.spool, `.tmp-${f}`), readFileSync(join(staging, f)));
          renameSync(join(d.spool, `.tmp-${f}`), join(d.spool, f));
        }
      }
      const [p1, p2] = await Promise.all([d1.cli(['push', '--wait']), d2.cli(['push', '--wait'])]);
      assert.equal(p1.code, 0, p1.stdout);
      assert.equal(p2.code, 0, p2.stdout);
      // a line missing below must be the caches' fault, not a record the daemon never traced
      for (const d of [d1, d2]) {
        const st = JSON.parse((await d.cli(['status', '--json'])).stdout) as { traced: number; rejected: number; caches: { preconditions: string }[] };
        assert.deepEqual({ traced: st.traced, rejected: st.rejected }, { traced: 60, rejected: 0 }, d.stderr());
        assert.deepEqual(
          st.caches.map((c) => c.preconditions),
          ['checked', 'checked'],
          'both caches refuse a stale conditional write',
        );
      }
      const keys = [parsePublicKey(d1.keys.publicKey), parsePublicKey(d2.keys.publicKey)];
      for (const root of [fileCache, nginx.root]) {
        const files = traceFiles(root);
        assert.equal(files.size, 60);
        for (const [h, lines] of files) {
          assert.equal(lines.length, 2, `${root}/traces/${h}`);
          const signers = lines.map((l) => {
            const c = checkBundle(l, keys);
            assert.ok(c.ok);
            return c.value.key.name;
          });
          assert.deepEqual(signers.sort(), ['conc-1', 'conc-2']);
        }
      }
    } finally {
      await Promise.all([d1.stop(), d2.stop(), nginx.stop()]);
    }
  });

  test('concurrent appends to one object: nginx answers 412/409 and no line is lost', async () => {
    const nginx = await startNginx();
    try {
      const c = new HttpCache(nginx.url);
      await Promise.all(Array.from({ length: 40 }, (_, i) => appendLines(c, 'buildtrace/contended.jsonl', [`{"writer":${i}}`])));
      const lines = (await c.get('buildtrace/contended.jsonl'))?.body.toString().trim().split('\n') ?? [];
      assert.equal(lines.length, 40);
      assert.equal(new Set(lines).size, 40);
      assert.equal(await c.putIf('buildtrace/contended.jsonl', Buffer.from('x'), '"stale"', 'text/plain'), false, 'a stale If-Match is refused');
      assert.equal(
        await c.putIf('buildtrace/contended.jsonl', Buffer.from('x'), undefined, 'text/plain'),
        false,
        'If-None-Match: * on an existing object is refused',
      );
    } finally {
      await nginx.stop();
    }
  });
});

describe('publishing to an S3 server that checks signatures (moto, authentication on)', () => {
  test('path-style and virtual-hosted publishing, signed, read back by trace-verify; a wrong key is refused, permanently', async (t) => {
    if (!requireOrSkip(t, 'moto', MOTO_VERSION !== undefined, MOTO_WHY)) return;
    const dir = tempDir('s3-');
    const moto = await startMoto(['cache', 'vcache']);
    const saved = { id: process.env['AWS_ACCESS_KEY_ID'], secret: process.env['AWS_SECRET_ACCESS_KEY'] };
    const env = { AWS_ACCESS_KEY_ID: moto.key.id, AWS_SECRET_ACCESS_KEY: moto.key.secret };
    Object.assign(process.env, env);
    const port = new URL(moto.base).port;
    const pathUrl = `s3://cache?endpoint=${moto.base}&region=us-east-1`;
    // Host: vcache.localhost:PORT, sent to the endpoint's address (no wildcard DNS needed)
    const vhostUrl = `s3://vcache?endpoint=http://localhost:${port}&region=us-east-1&addressing-style=virtual`;
    const d = await startDaemon({ extraConfig: { caches: [{ url: pathUrl }, { url: vhostUrl }] } });
    try {
      const drvs = await buildMany(d, 10, 's3');
      const p = await d.cli(['push', '--wait']);
      assert.equal(p.code, 0, p.stdout + p.stderr);
      // moto checks If-Match from 5.2 (sid); trixie's 5.1 takes a stale one: the operator is told
      const checks = motoChecksIfMatch(MOTO_VERSION as string);
      const st = JSON.parse((await d.cli(['status', '--json'])).stdout) as { caches: { preconditions: string }[] };
      assert.deepEqual(
        st.caches.map((c) => c.preconditions),
        checks ? ['checked', 'checked'] : ['ignored', 'ignored'],
        `moto ${MOTO_VERSION}`,
      );
      if (checks) assert.doesNotMatch(d.stderr(), /accepts writes under a stale If-Match/);
      else assert.match(d.stderr(), /accepts writes under a stale If-Match/);
      const policy = join(dir, 'p.json');
      writeFileSync(policy, JSON.stringify({ keys: { k: { publicKey: d.keys.publicKey } }, trust: 'k' }));
      for (const u of [pathUrl, vhostUrl]) {
        for (const drv of drvs.slice(0, 3)) {
          const v = await run(VERIFY_CLI, [drv, '--policy', policy, '--cache', u]);
          assert.equal(v.code, 0, `${u}: ${v.stdout}${v.stderr}`);
        }
      }
      // virtual-hosted requests reach bucket vcache, not cache: read back path-style
      const inV = S3Cache.fromUrl(`s3://vcache?endpoint=${moto.base}&region=us-east-1`);
      const inP = S3Cache.fromUrl(pathUrl);
      assert.deepEqual(await appendLines(S3Cache.fromUrl(vhostUrl), 'traces/vhost-only', ['{"v":1}']), { added: 1, key: 'traces/vhost-only' });
      assert.equal((await inV.get('traces/vhost-only'))?.body.toString('utf8'), '{"v":1}\n');
      assert.equal(await inP.get('traces/vhost-only'), undefined);
      // a wrong secret (moto recomputes the signature) and an unknown access key: permanent errors, not retried forever
      process.env['AWS_SECRET_ACCESS_KEY'] = `${moto.key.secret.slice(0, -1)}${moto.key.secret.endsWith('A') ? 'B' : 'A'}`;
      await assert.rejects(appendLines(S3Cache.fromUrl(pathUrl), 'traces/x', ['{}']), (e: { permanent?: boolean; message?: string }) => {
        assert.match(e.message ?? '', /HTTP 403.*SignatureDoesNotMatch/s);
        return e.permanent === true;
      });
      Object.assign(process.env, env);
      process.env['AWS_ACCESS_KEY_ID'] = 'NOBODY';
      await assert.rejects(appendLines(S3Cache.fromUrl(pathUrl), 'traces/x', ['{}']), (e: { permanent?: boolean; message?: string }) => {
        assert.match(e.message ?? '', /HTTP 403.*InvalidAccessKeyId/s);
        return e.permanent === true;
      });
      Object.assign(process.env, env);
      assert.equal(await inP.get('traces/x'), undefined, 'nothing was written with a wrong key');
    } finally {
      setEnv({ AWS_ACCESS_KEY_ID: saved.id, AWS_SECRET_ACCESS_KEY: saved.secret });
      await d.stop();
      await moto.stop();
    }
  });
});

describe('Nix-native build-trace-v2 entries for content-addressed outputs', () => {
  test("the fingerprint is byte for byte the one in Nix's test data", () => {
    assert.equal(
      buildTraceFingerprint('g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-bar.drv', 'foo', 'g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-foo'),
      '{"key":{"drvPath":"g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-bar.drv","outputName":"foo"},"value":{"outPath":"g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-foo"}}',
    );
  });

  test('a CA build gets build-trace-v2/<resolved drv>/<output>.doi signed by the builder key; IA builds do not', async () => {
    const cache = join(tempDir('bt2-'), 'cache');
    const d = await startDaemon({ extraConfig: { caches: [{ url: `file://${cache}`, buildTraceV2: true }] } });
    try {
      const s = salt();
      const fodHash = (await import('node:crypto')).createHash('sha256').update(`fixed-${s}\n`).digest('hex');
      const b = await nixBuildWithHook(d.spool, [join(FIXTURES, 'scope.nix'), '--argstr', 'salt', s, '--argstr', 'fodHash', fodHash, '-A', 'ca3', '-A', 'ia1']);
      assert.equal(b.code, 0, b.stderr);
      assert.equal((await d.cli(['push', '--wait'])).code, 0);
      const db = new (await import('better-sqlite3')).default(d.dbFile, { readonly: true });
      const rows = db.prepare('SELECT t.kind, t.rdrv_path, o.name, o.path FROM traces t JOIN outputs o ON o.trace_id = t.id').all() as {
        kind: string;
        rdrv_path: string;
        name: string;
        path: string;
      }[];
      db.close();
      const pub = parsePublicKey(d.keys.publicKey);
      const base = (p: string) => p.slice(p.lastIndexOf('/') + 1);
      let ca = 0;
      for (const r of rows) {
        const file = join(cache, 'build-trace-v2', base(r.rdrv_path), `${r.name}.doi`);
        if (r.kind !== 'ca') {
          assert.ok(!(await import('node:fs')).existsSync(file), `no entry for ${r.kind} ${r.rdrv_path}`);
          continue;
        }
        ca++;
        const v = JSON.parse(readFileSync(file, 'utf8')) as { outPath: string; signatures: { keyName: string; sig: string }[] };
        assert.equal(v.outPath, base(r.path));
        assert.equal(v.signatures.length, 1);
        const sig = v.signatures[0] as { keyName: string; sig: string };
        assert.equal(sig.keyName, pub.name);
        assert.ok(verifyDetached(pub, buildTraceFingerprint(base(r.rdrv_path), r.name, base(r.path)), Buffer.from(sig.sig, 'base64')));
      }
      assert.equal(ca, 3, 'ca-1, ca-2 and ca-3');
    } finally {
      await d.stop();
    }
  });
});
