// ci: nix (runs on every Nix: the host and the trixie and sid chroots; see scripts/run-tests.sh)
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, symlinkSync, writeFileSync, writeSync, ftruncateSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { appendLines, CacheError } from '../src/cache/backend.js';
import { FileCache } from '../src/cache/file-cache.js';
import { HttpCache } from '../src/cache/http-cache.js';
import { CacheSource } from '../src/verify/sources.js';
import { must, nixBuildWithHook, nixEnv, nixKeyPair, ROOT, salt, startDaemon, tempDir, VERIFY_CLI } from './helpers.js';
import { startNginx, type NginxCache } from './nginx.js';
import { parseLautContainer } from '../src/trace/laut-jws.js';

/**
 * A cache run by an attacker: every case runs the real trace-verify as a child process under
 * /usr/bin/time and asserts that it ends by itself within 60 s, stays under 512 MB RSS, exits
 * 1 or 2 and names the limit or rule it hit.
 */

interface Measured {
  code: number;
  stdout: string;
  stderr: string;
  seconds: number;
  rssMb: number;
}

let drv = '';
let hash = '';
let policy = '';
const work = tempDir('hostile-');
const measurements: string[] = [];

/** trace-verify against one cache, measured; killed (and the test failed) after 90 s. */
function verifyAgainst(cacheUrl: string, extra: readonly string[] = [], env: Record<string, string> = {}): Promise<Measured> {
  const timeFile = join(work, `time-${Math.random().toString(36).slice(2)}`);
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/time', ['-o', timeFile, '-f', '%M %e', VERIFY_CLI, drv, '--policy', policy, '--cache', cacheUrl, ...extra], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    const killer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(killer);
      const [rssKb, secs] = readFileSync(timeFile, 'utf8').trim().split('\n').pop()?.split(' ') ?? [];
      resolve({
        code: code ?? -1,
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString(),
        seconds: Number(secs),
        rssMb: Number(rssKb) / 1024,
      });
    });
  });
}

/** The acceptance of every hostile case: the one exit code it must end with (2: a bound or a cache error; 1: a verdict). */
function assertBounded(name: string, r: Measured, exit: 1 | 2, message: RegExp): void {
  measurements.push(`${name}: exit ${r.code}, ${r.seconds.toFixed(2)} s, ${r.rssMb.toFixed(0)} MB RSS`);
  const all = r.stdout + r.stderr;
  assert.doesNotMatch(all, /internal error/, name);
  assert.equal(r.code, exit, `${name}: exit ${r.code}\n${all}`);
  assert.ok(r.seconds < 60, `${name}: ${r.seconds} s`);
  assert.ok(r.rssMb < 512, `${name}: ${r.rssMb} MB`);
  assert.match(all, message, name);
}

/** A bundle-shaped line of `size` bytes; `i` varies only the unsigned hint (a replay). */
function bundleLine(i: number, size = 300): string {
  const head = `{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{"hint":"${i.toString(16).padStart(8, '0')}"}},"dsseEnvelope":{"payloadType":"application/vnd.in-toto+json","payload":"`;
  const tail = '","signatures":[{"sig":"AAAA"}]}}';
  return head + 'A'.repeat(Math.max(0, size - head.length - tail.length)) + tail;
}

interface Recorder {
  readonly url: string;
  readonly seen: { method: string; path: string; auth: string | undefined }[];
  close(): Promise<void>;
}

/** A node http server on 127.0.0.1 (a free port the kernel picks) that records each request. */
async function serve(handler: (req: IncomingMessage, res: ServerResponse, n: number) => void): Promise<Recorder> {
  const seen: Recorder['seen'] = [];
  const server: Server = createServer((req, res) => {
    seen.push({ method: req.method ?? '', path: req.url ?? '', auth: req.headers.authorization });
    handler(req, res, seen.length);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

function fileCacheWith(object: (path: string) => void): string {
  const root = join(tempDir('hostile-file-'), 'cache');
  mkdirSync(join(root, 'traces'), { recursive: true });
  object(join(root, 'traces', hash));
  return `file://${root}`;
}

before(async () => {
  // one derivation without inputs: its own resolution, so traces/<its hash> is what is read
  const nix = join(work, 'one.nix');
  writeFileSync(
    nix,
    `derivation { name = "hostile-target"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "echo ${salt()} > $out" ]; }\n`,
  );
  drv = (await must('nix-instantiate', [nix], { env: nixEnv() })).stdout.trim();
  hash = drv.slice('/nix/store/'.length, '/nix/store/'.length + 32);
  const k = await nixKeyPair(work, 'hostile-test');
  policy = join(work, 'policy.json');
  writeFileSync(policy, JSON.stringify({ keys: { k: { publicKey: k.publicKey } }, trust: 'k' }));
});

after(() => {
  process.stderr.write(`hostile-cache measurements:\n  ${measurements.join('\n  ')}\n`);
});

describe('hostile file:// cache: trace-verify ends, bounded, and names the limit', () => {
  test('traces/<h> is a symbolic link to /dev/zero', async () => {
    const url = fileCacheWith((p) => symlinkSync('/dev/zero', p));
    assertBounded('file:// symlink to /dev/zero', await verifyAgainst(url), 2, /never follow links/);
  });

  test('traces/ itself is a symbolic link (to a directory holding a good-looking object)', async () => {
    const elsewhere = tempDir('elsewhere-');
    writeFileSync(join(elsewhere, 'x'), bundleLine(0));
    const root = join(tempDir('hostile-file-'), 'cache');
    mkdirSync(root);
    symlinkSync(elsewhere, join(root, 'traces'));
    writeFileSync(join(elsewhere, hash), `${bundleLine(1)}\n`);
    assertBounded('file:// traces/ a symlink', await verifyAgainst(`file://${root}`), 2, /never follow links/);
  });

  test('traces/<h> is a FIFO nobody writes to', async () => {
    const url = fileCacheWith((p) => execFileSync('mkfifo', [p]));
    assertBounded('file:// FIFO', await verifyAgainst(url), 2, /is a FIFO; file:\/\/ caches read only regular files/);
    // with the worker pool started (as for big closures): its threads must not keep the run alive
    assertBounded('file:// FIFO, worker pool', await verifyAgainst(url, [], { BUILDTRACE_POOL: 'always' }), 2, /is a FIFO/);
    // the environment does reach the run (a value the switch refuses shows it)
    const bogus = await verifyAgainst(url, [], { BUILDTRACE_POOL: 'bogus' });
    assert.equal(bogus.code, 2, bogus.stderr);
    assert.match(bogus.stderr, /BUILDTRACE_POOL must be always, never or auto, not "bogus"/);
  });

  test('traces/<h> is one 300 MB line', async () => {
    const url = fileCacheWith((p) => {
      const fd = openSync(p, 'w');
      const chunk = Buffer.alloc(1 << 20, 0x41);
      writeSync(fd, '{"x":"');
      for (let i = 0; i < 300; i++) writeSync(fd, chunk);
      writeSync(fd, '"}');
      closeSync(fd);
    });
    assertBounded('file:// 300 MB line', await verifyAgainst(url), 2, /limit maxObjectBytes \(67108864\) exceeded/);
  });

  test('traces/<h> holds one 2 MiB line (under the object cap)', async () => {
    const url = fileCacheWith((p) => writeFileSync(p, `${bundleLine(0, 2 << 20)}\n`));
    assertBounded('file:// 2 MiB line', await verifyAgainst(url), 2, /limit maxLineBytes \(1048576\) exceeded: line 1/);
  });

  test('traces/<h> holds one bundle replayed 200,000 times (only the unsigned hint changed)', async () => {
    const url = fileCacheWith((p) => {
      const fd = openSync(p, 'w');
      let batch = '';
      for (let i = 0; i < 200_000; i++) {
        batch += `${bundleLine(i)}\n`;
        if (batch.length > 1 << 20) {
          writeSync(fd, batch);
          batch = '';
        }
      }
      writeSync(fd, batch);
      closeSync(fd);
    });
    assertBounded('file:// 200,000 replayed lines', await verifyAgainst(url), 2, /limit maxLines \(100000\) exceeded/);
  });

  test('traces/<h> is a 1 GiB sparse file', async () => {
    const url = fileCacheWith((p) => {
      const fd = openSync(p, 'w');
      ftruncateSync(fd, 1 << 30);
      closeSync(fd);
    });
    assertBounded('file:// 1 GiB sparse', await verifyAgainst(url), 2, /limit maxObjectBytes \(67108864\) exceeded/);
  });

  test('a limit can be lowered (and a trusted cache could raise it)', async () => {
    const url = fileCacheWith((p) => writeFileSync(p, `${bundleLine(1)}\n${bundleLine(2)}\n${bundleLine(3)}\n`));
    assertBounded('file:// --max-lines 2', await verifyAgainst(url, ['--max-lines', '2']), 2, /limit maxLines \(2\) exceeded.*--max-lines/);
    const bad = await verifyAgainst(url, ['--max-lines', 'lots']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--max-lines "lots": expected an integer/);
  });
});

describe('hostile http cache: trace-verify ends, bounded, and names the limit', () => {
  test('a server that sends one byte every 2 s (total deadline, not idle timeout)', async () => {
    const timers = new Set<NodeJS.Timeout>();
    const srv = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/jsonl' });
      const t = setInterval(() => res.write('{'), 2000);
      timers.add(t);
      res.on('close', () => clearInterval(t));
    });
    try {
      const r = await verifyAgainst(srv.url);
      assertBounded('http one byte / 2 s', r, 2, /no complete answer within 15000 ms \(limit requestTimeoutMs/);
      assert.equal(srv.seen.filter((s) => s.path === `/traces/${hash}`).length, 3, 'three attempts (two retries)');
    } finally {
      for (const t of timers) clearInterval(t);
      await srv.close();
    }
  });

  test('a closure of 101 derivations against a server that never finishes: the first failure ends the run', async () => {
    const nix = join(work, 'wide.nix');
    writeFileSync(
      nix,
      `let leaf = i: derivation { name = "wide-\${toString i}"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "echo ${salt()} \${toString i} > $out" ]; };
       leaves = builtins.genList leaf 100;
       in derivation { name = "wide-top"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "echo \${toString leaves} > $out" ]; }\n`,
    );
    const top = (await must('nix-instantiate', [nix], { env: nixEnv() })).stdout.trim();
    const timers = new Set<NodeJS.Timeout>();
    const srv = await serve((_req, res) => {
      res.writeHead(200);
      const t = setInterval(() => res.write('{'), 500);
      timers.add(t);
      res.on('close', () => clearInterval(t));
    });
    try {
      const saved = drv;
      drv = top;
      const r = await verifyAgainst(srv.url, ['--request-timeout-ms', '2000', '--retries', '0']).finally(() => (drv = saved));
      assertBounded('http 101 derivations, never finishing', r, 2, /no complete answer within 2000 ms/);
      // 32 reads in flight at once: one round of 2 s, not four (the queued 68 are never sent)
      assert.ok(r.seconds < 7, `${r.seconds} s`);
      assert.ok(srv.seen.length <= 40, `${srv.seen.length} requests`);
    } finally {
      for (const t of timers) clearInterval(t);
      await srv.close();
    }
  });

  test('a server that sends an endless body', async () => {
    const chunk = Buffer.alloc(1 << 16, 0x41);
    const srv = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/jsonl' });
      const pump = (): void => {
        while (!res.destroyed && res.write(chunk));
        if (!res.destroyed) res.once('drain', pump);
      };
      pump();
    });
    try {
      assertBounded('http endless body', await verifyAgainst(srv.url), 2, /limit maxObjectBytes \(67108864\) exceeded: the body went past it/);
    } finally {
      await srv.close();
    }
  });

  test('a server that announces a 1 GiB body is refused before reading it', async () => {
    const srv = await serve((_req, res) => {
      res.writeHead(200, { 'content-length': String(1 << 30) });
      res.write('{');
    });
    try {
      assertBounded(
        'http Content-Length 1 GiB',
        await verifyAgainst(srv.url),
        2,
        /limit maxObjectBytes \(67108864\) exceeded: the server announces 1073741824 bytes/,
      );
    } finally {
      await srv.close();
    }
  });

  test('503 then 200: retried, and the answer is read', async () => {
    const srv = await serve((_req, res, n) => {
      if (n === 1) {
        res.writeHead(503).end('busy');
        return;
      }
      res.writeHead(200).end(`${bundleLine(7)}\n`);
    });
    try {
      const r = await verifyAgainst(srv.url, ['--json']);
      measurements.push(`http 503 then 200: exit ${r.code}, ${r.seconds.toFixed(2)} s, ${r.rssMb.toFixed(0)} MB RSS`);
      assert.equal(srv.seen.length, 2, 'one retry');
      // the 200's (unsigned) line reached the verifier and was judged
      assert.equal(r.code, 1, r.stdout + r.stderr);
      const codes = (JSON.parse(r.stdout) as { problems: { code: string }[] }).problems.map((p) => p.code);
      assert.deepEqual(codes, ['malformed'], 'the unsigned line is judged by its shape (no signature of 64 bytes), not "no trace"');
      const c = new HttpCache(srv.url);
      assert.equal((await c.get('traces/again'))?.body.toString(), `${bundleLine(7)}\n`);
    } finally {
      await srv.close();
    }
  });

  test('503 for ever: retries with backoff, then exit 2 naming the status', async () => {
    const srv = await serve((_req, res) => void res.writeHead(503).end('down'));
    try {
      const r = await verifyAgainst(srv.url);
      assertBounded('http 503 for ever', r, 2, /HTTP 503/);
      assert.equal(r.code, 2);
      assert.equal(srv.seen.length, 3);
    } finally {
      await srv.close();
    }
  });

  test('403 on GET: the verifier reads it as absent (as Nix does), never as a trace', async () => {
    const srv = await serve((_req, res) => void res.writeHead(403).end('denied'));
    try {
      const r = await verifyAgainst(srv.url);
      assertBounded('http 403', r, 1, /no trace for resolved derivation/);
      assert.equal(r.code, 1);
    } finally {
      await srv.close();
    }
  });
});

describe('publishing: 403, missing newlines, foreign objects, credentials', () => {
  let nginx: NginxCache;
  before(async () => {
    nginx = await startNginx();
  });
  after(async () => {
    await nginx.stop();
  });

  test('403 on GET is an error for a writer, never "absent" followed by a create', async () => {
    const srv = await serve((req, res) => void res.writeHead(req.method === 'GET' ? 403 : 201).end());
    try {
      await assert.rejects(
        appendLines(new HttpCache(srv.url), 'traces/x', [bundleLine(1)]),
        (e: unknown) => e instanceof CacheError && e.status === 403 && e.permanent,
      );
      assert.deepEqual(
        srv.seen.map((s) => s.method),
        ['GET'],
        'no PUT after the 403',
      );
    } finally {
      await srv.close();
    }
  });

  test('append to an object without a final newline (nginx and file://): two lines, each once', async () => {
    const file = new FileCache(join(tempDir('nl-'), 'cache'));
    for (const [cache, path] of [
      [new HttpCache(nginx.url), join(nginx.root, 'traces', 'nonl')],
      [file, join(file.root, 'traces', 'nonl')],
    ] as const) {
      mkdirSync(join(path, '..'), { recursive: true });
      writeFileSync(path, bundleLine(1));
      const r = await appendLines(cache, 'traces/nonl', [bundleLine(2)]);
      assert.deepEqual(r, { added: 1, key: 'traces/nonl' });
      assert.equal(readFileSync(path, 'utf8'), `${bundleLine(1)}\n${bundleLine(2)}\n`, cache.url);
      assert.deepEqual(await appendLines(cache, 'traces/nonl', [bundleLine(2)]), { added: 0, key: 'traces/nonl' });
    }
  });

  test("laut's JWS container is left byte-identical; our bundles go beside it and the reader sees both", async () => {
    const name = '990ikqv47q9hscrnrgm17chk66clivwa';
    const container = readFileSync(join(ROOT, 'test/vectors/laut/traces', name));
    const file = new FileCache(join(tempDir('laut-'), 'cache'));
    for (const [cache, root] of [
      [new HttpCache(nginx.url), nginx.root],
      [file, file.root],
    ] as const) {
      mkdirSync(join(root, 'traces'), { recursive: true });
      writeFileSync(join(root, 'traces', name), container);
      const r = await appendLines(cache, `traces/${name}`, [bundleLine(3)]);
      assert.deepEqual(r, { added: 1, key: `traces/${name}.jsonl` });
      assert.ok(readFileSync(join(root, 'traces', name)).equals(container), `${cache.url}: laut's object untouched`);
      assert.equal(readFileSync(join(root, 'traces', `${name}.jsonl`), 'utf8'), `${bundleLine(3)}\n`);
      // again: nothing new, still untouched
      assert.deepEqual(await appendLines(cache, `traces/${name}`, [bundleLine(3)]), { added: 0, key: `traces/${name}.jsonl` });
      assert.ok(readFileSync(join(root, 'traces', name)).equals(container));
      const recs = await new CacheSource(cache).bundles(name);
      // laut's container is read as its JWS units (src/trace/laut-jws.ts), then our bundle
      assert.deepEqual(recs, [...(parseLautContainer(container.toString('utf8')) as string[]), bundleLine(3)]);
    }
    // a non-trace JSON Lines object holding something else is refused, permanently, untouched
    writeFileSync(join(file.root, 'traces', 'notes.jsonl'), 'hello\n');
    mkdirSync(join(file.root, 'buildtrace', 'keys'), { recursive: true });
    writeFileSync(join(file.root, 'buildtrace', 'keys', 'k.jsonl'), '[1,2]\n');
    await assert.rejects(
      appendLines(file, 'buildtrace/keys/k.jsonl', ['{"a":1}']),
      (e: unknown) => e instanceof CacheError && e.permanent && e.reason === 'foreign-object',
    );
    assert.equal(readFileSync(join(file.root, 'buildtrace', 'keys', 'k.jsonl'), 'utf8'), '[1,2]\n');
  });

  test('credentials go only to the cache they belong to and never into messages', async () => {
    const okOr500 = (req: IncomingMessage, res: ServerResponse): void => void res.writeHead(req.url?.includes('fail') ? 500 : 404).end();
    const [a, b, c] = await Promise.all([serve(okOr500), serve(okOr500), serve(okOr500)]);
    const saved = { token: process.env['BUILDTRACE_CACHE_TOKEN'], origin: process.env['BUILDTRACE_CACHE_TOKEN_ORIGIN'], netrc: process.env['NETRC'] };
    try {
      process.env['NETRC'] = join(work, 'no-netrc');
      process.env['BUILDTRACE_CACHE_TOKEN'] = 'env-token-for-a';
      // the environment token without saying whose it is: refused, not sent to everyone
      delete process.env['BUILDTRACE_CACHE_TOKEN_ORIGIN'];
      assert.throws(() => new HttpCache(b.url), /BUILDTRACE_CACHE_TOKEN_ORIGIN/);
      process.env['BUILDTRACE_CACHE_TOKEN_ORIGIN'] = a.url;
      const tokenFile = join(work, 'b.token');
      writeFileSync(tokenFile, 'file-token-for-b\n', { mode: 0o600 });
      const withPassword = c.url.replace('http://', 'http://alice:s3cret-pw@');
      const caches = [new HttpCache(a.url), new HttpCache(b.url, { tokenFile }), new HttpCache(withPassword)];
      for (const cache of caches) assert.equal(await cache.get('traces/x'), undefined);
      assert.deepEqual(
        a.seen.map((s) => s.auth),
        ['Bearer env-token-for-a'],
      );
      assert.deepEqual(
        b.seen.map((s) => s.auth),
        ['Bearer file-token-for-b'],
      );
      assert.deepEqual(
        c.seen.map((s) => s.auth),
        [`Basic ${Buffer.from('alice:s3cret-pw').toString('base64')}`],
      );
      // the password is in no URL we show and in no error message
      const third = caches[2] as HttpCache;
      assert.equal(third.url, c.url);
      const err = await third.get('traces/fail').catch((e: unknown) => e as Error);
      assert.ok(err instanceof Error && /HTTP 500/.test(err.message), String(err));
      assert.doesNotMatch(err.message, /s3cret|alice/);
      const v = await verifyAgainst(withPassword);
      assert.doesNotMatch(v.stdout + v.stderr, /s3cret/);
      // the run itself went through to a verdict (404: no trace), so the text searched is its real output
      assert.equal(v.code, 1, v.stdout + v.stderr);
      assert.match(v.stdout, /no trace for resolved derivation/);
    } finally {
      for (const [k, v] of [
        ['BUILDTRACE_CACHE_TOKEN', saved.token],
        ['BUILDTRACE_CACHE_TOKEN_ORIGIN', saved.origin],
        ['NETRC', saved.netrc],
      ] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
      await Promise.all([a.close(), b.close(), c.close()]);
    }
  });

  test('the daemon: each cache gets only its own credential; status and log never show the password', async () => {
    const store = new Map<string, Buffer>();
    const keep = (req: IncomingMessage, res: ServerResponse): void => {
      if (req.method === 'PUT') {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          store.set(`${req.headers.host}${req.url}`, Buffer.concat(chunks));
          res.writeHead(201).end();
        });
        return;
      }
      const body = store.get(`${req.headers.host}${req.url}`);
      if (body) res.writeHead(200, { etag: `"${body.length}"` }).end(body);
      else res.writeHead(404).end();
    };
    const [a, b] = await Promise.all([serve(keep), serve(keep)]);
    const tokenFile = join(work, 'daemon-b.token');
    writeFileSync(tokenFile, 'daemon-token-b\n', { mode: 0o600 });
    const withPassword = a.url.replace('http://', 'http://builder:hunter2-pw@');
    const d = await startDaemon({ extraConfig: { caches: [{ url: withPassword }, { url: b.url, tokenFile }] } });
    try {
      const nix = join(work, 'pub.nix');
      writeFileSync(nix, `derivation { name = "cred-test"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "echo ${salt()} > $out" ]; }\n`);
      const built = await nixBuildWithHook(d.spool, [nix]);
      assert.equal(built.code, 0, built.stderr);
      const p = await d.cli(['push', '--wait']);
      assert.equal(p.code, 0, p.stdout + p.stderr);
      const basic = `Basic ${Buffer.from('builder:hunter2-pw').toString('base64')}`;
      assert.ok(a.seen.length > 0 && b.seen.length > 0);
      assert.ok(
        a.seen.every((x) => x.auth === basic),
        JSON.stringify(a.seen),
      );
      assert.ok(
        b.seen.every((x) => x.auth === 'Bearer daemon-token-b'),
        JSON.stringify(b.seen),
      );
      const st = await d.cli(['status', '--json']);
      const human = await d.cli(['status']);
      for (const text of [st.stdout, human.stdout, d.stderr()]) assert.doesNotMatch(text, /hunter2|daemon-token-b/);
      assert.ok((JSON.parse(st.stdout) as { caches: { url: string }[] }).caches.some((c) => c.url === a.url));
    } finally {
      await d.stop();
      await Promise.all([a.close(), b.close()]);
    }
  });
});
