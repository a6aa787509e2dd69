import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer as createNetServer } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import S3rver from 's3rver';
import { appendLines, CacheError, isBundleLine } from '../src/cache/backend.js';
import { redactUrl } from '../src/cache/credentials.js';
import { FileCache } from '../src/cache/file-cache.js';
import { HttpCache } from '../src/cache/http-cache.js';
import { send } from '../src/cache/http-request.js';
import { DEFAULT_READ_LIMITS, readLimitsFrom } from '../src/cache/limits.js';
import { S3Cache } from '../src/cache/s3-cache.js';
import { BuildtraceError, exitCodeFor } from '../src/errors.js';
import { CacheSource, DbSource, recordsOf } from '../src/verify/sources.js';
import { setEnv, tempDir, waitFor } from './helpers.js';

const small = { maxLineBytes: 100, maxLines: 3 };
const isLimit = (name: string) => (e: unknown) =>
  e instanceof BuildtraceError && e.code === 'LIMIT_EXCEEDED' && e.message.includes(`limit ${name}`) && exitCodeFor(e) === 2;

test('recordsOf: JSON Lines split, identical lines once, blank lines ignored', () => {
  assert.deepEqual(recordsOf('{"a":1}\n\n{"a":1}\r\n{"b":2}\n', small, 'traces/h', 'file:///c'), ['{"a":1}', '{"b":2}']);
  assert.deepEqual(recordsOf('', small, 'traces/h', 'file:///c'), []);
});

test('recordsOf: a document that is not JSON Lines (a laut container) is one record', () => {
  const doc = '{\n  "signatures": [\n    "a.b.c"\n  ]\n}\n';
  assert.deepEqual(recordsOf(doc, { maxLineBytes: 100, maxLines: 10 }, 'traces/h', 'c'), [doc.trim()]);
  // the line cap applies to the whole document then
  assert.throws(() => recordsOf(doc, { maxLineBytes: 20, maxLines: 10 }, 'traces/h', 'c'), isLimit('maxLineBytes'));
});

test('recordsOf: lines and line bytes are capped (bytes, not UTF-16 units), naming object and cache', () => {
  assert.throws(
    () => recordsOf('{}\n{}\n{}\n{}\n', small, 'traces/h', 'file:///c'),
    (e: unknown) => isLimit('maxLines')(e) && /file:\/\/\/c\/traces\/h/.test((e as Error).message),
  );
  assert.throws(() => recordsOf(`{"x":"${'a'.repeat(200)}"}`, small, 'traces/h', 'c'), isLimit('maxLineBytes'));
  // 40 three-byte characters: 46 UTF-16 units but 126 bytes
  assert.throws(() => recordsOf(`{"x":"${'€'.repeat(40)}"}`, small, 'traces/h', 'c'), isLimit('maxLineBytes'));
  assert.equal(recordsOf(`{"x":"${'€'.repeat(20)}"}`, small, 'traces/h', 'c').length, 1);
});

test('readLimitsFrom: flags override defaults; bad values name their flag', () => {
  const v = new Map([
    ['max-lines', '5'],
    ['retries', '0'],
  ]);
  assert.deepEqual(
    readLimitsFrom((f) => v.get(f)),
    { ...DEFAULT_READ_LIMITS, maxLines: 5, retries: 0 },
  );
  for (const [flag, bad] of [
    ['max-object-bytes', '-1'],
    ['max-line-bytes', '1e6'],
    ['request-timeout-ms', '0'],
    ['retries', 'x'],
  ]) {
    assert.throws(() => readLimitsFrom((f) => (f === flag ? bad : undefined)), new RegExp(`--${flag}`));
  }
});

test('redactUrl: no password or user in what we show, also inside an s3 endpoint', () => {
  assert.equal(redactUrl('https://alice:pw@cache.example.org/x'), 'https://cache.example.org/x');
  assert.equal(redactUrl('https://alice@cache.example.org'), 'https://cache.example.org');
  assert.equal(redactUrl('s3://b?endpoint=https://k:secret@h:9000&region=r'), 's3://b?endpoint=https://h:9000&region=r');
  assert.equal(redactUrl('s3://b?endpoint=https%3A%2F%2Fk%3Asecret%40h'), 's3://b?endpoint=https%3A%2F%2Fh');
  assert.equal(redactUrl('file:///srv/cache'), 'file:///srv/cache');
});

test('isBundleLine: Sigstore bundle lines only', () => {
  assert.ok(isBundleLine('{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","x":1}'));
  assert.ok(isBundleLine('{"mediaType": "application/vnd.dev.sigstore.bundle+json;version=0.3"}'));
  assert.ok(!isBundleLine('{"signatures":["a.b.c"]}'));
  assert.ok(!isBundleLine('{'));
});

test('DbSource: rows per resolved derivation and bytes per row are capped; an oversized row is never loaded', async () => {
  const file = join(tempDir('dbsource-'), 'db.sqlite');
  const db = new Database(file);
  db.exec('CREATE TABLE traces (id INTEGER PRIMARY KEY, rdrv_hash TEXT, bundle TEXT)');
  const ins = db.prepare('INSERT INTO traces (rdrv_hash, bundle) VALUES (?, ?)');
  ins.run('few', '{"a":1}');
  ins.run('few', '{"a":1}');
  ins.run('few', '{"b":2}');
  for (let i = 0; i < 5; i++) ins.run('many', `{"i":${i}}`);
  ins.run('big', `{"x":"${'a'.repeat(500)}"}`);
  db.close();
  const src = new DbSource(file, { ...DEFAULT_READ_LIMITS, ...{ maxLines: 4, maxLineBytes: 100 } });
  assert.deepEqual(await src.bundles('few'), ['{"a":1}', '{"b":2}']);
  await assert.rejects(src.bundles('many'), isLimit('maxLines'));
  await assert.rejects(src.bundles('big'), (e: unknown) => isLimit('maxLineBytes')(e) && /508 bytes/.test((e as Error).message));
});

test('FileCache: a directory, a socket or a path through a file is refused, never read', async () => {
  const root = join(tempDir('fc-'), 'cache');
  mkdirSync(join(root, 'traces', 'dir'), { recursive: true });
  writeFileSync(join(root, 'plain'), 'x');
  const sock = createNetServer();
  await new Promise<void>((r) => sock.listen(join(root, 'traces', 'sock'), r));
  try {
    const c = new FileCache(root);
    await assert.rejects(c.get('traces/dir'), (e: unknown) => e instanceof CacheError && e.reason === 'not-regular-file' && /a directory/.test(e.message));
    await assert.rejects(c.get('traces/sock'), (e: unknown) => e instanceof CacheError && /a socket/.test(e.message));
    await assert.rejects(c.get('plain/x'), (e: unknown) => e instanceof CacheError && e.reason === 'not-regular-file');
    assert.equal(await c.get('traces/absent'), undefined);
    await assert.rejects(c.get('traces/../plain'), /illegal cache key/);
    writeFileSync(join(root, 'traces', 'ok'), '0123456789');
    assert.equal((await c.get('traces/ok', { maxBytes: 10 }))?.body.toString(), '0123456789');
    await assert.rejects(c.get('traces/ok', { maxBytes: 9 }), isLimit('maxObjectBytes'));
  } finally {
    sock.close();
  }
});

test('FileCache.absent: only keys with no entry at all; links, FIFOs, directories and paths through links are left to get', async () => {
  const root = join(tempDir('fc-absent-'), 'cache');
  const elsewhere = tempDir('fc-elsewhere-');
  mkdirSync(join(root, 'dir'), { recursive: true });
  writeFileSync(join(root, 'present.narinfo'), 'StorePath: x\n');
  symlinkSync('/dev/zero', join(root, 'zero.narinfo'));
  symlinkSync(join(elsewhere, 'nothing'), join(root, 'dangling.narinfo'));
  execFileSync('mkfifo', [join(root, 'fifo.narinfo')]);
  // a linked directory: what is (not) behind it must not be answered through the link
  symlinkSync(elsewhere, join(root, 'linked'));
  const c = new FileCache(root);
  const keys = [
    'missing.narinfo',
    'present.narinfo',
    'zero.narinfo',
    'dangling.narinfo',
    'fifo.narinfo',
    'dir',
    'linked/missing.narinfo',
    '../x',
    'dir/missing',
  ];
  assert.deepEqual([...c.absent(keys)].sort(), ['dir/missing', 'missing.narinfo']);
  // and what get makes of the rest: the link and the FIFO are refused, not read
  await assert.rejects(c.get('zero.narinfo'), (e: unknown) => e instanceof CacheError && e.reason === 'not-regular-file');
  await assert.rejects(c.get('fifo.narinfo'), (e: unknown) => e instanceof CacheError && e.reason === 'not-regular-file');
  await assert.rejects(c.get('linked/missing.narinfo'), (e: unknown) => e instanceof CacheError && e.reason === 'not-regular-file');
  // a CacheSource that already failed answers with its failure, not with "absent"
  const src = new CacheSource(c);
  await assert.rejects(src.readObject('linked/missing.narinfo', 1000));
  assert.throws(() => src.absentObjects(['missing.narinfo']), CacheError);
});

test('send: the deadline is total and an abort ends a request at once', async () => {
  const { createServer } = await import('node:http');
  const server = createServer((_req, res) => {
    res.writeHead(200);
    const t = setInterval(() => res.write('x'), 50);
    res.on('close', () => clearInterval(t));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = new URL(`http://127.0.0.1:${(server.address() as { port: number }).port}/x`);
  try {
    const t0 = Date.now();
    await assert.rejects(send(url, 'GET', {}, undefined, { deadlineMs: 400 }), /no complete answer within 400 ms/);
    const took = Date.now() - t0;
    assert.ok(took >= 350 && took < 2000, `${took} ms`);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    const t1 = Date.now();
    await assert.rejects(send(url, 'GET', {}, undefined, { deadlineMs: 10_000, signal: ac.signal }), /abandoned/);
    assert.ok(Date.now() - t1 < 2000);
  } finally {
    server.closeAllConnections();
    server.close();
  }
});

test('S3: 403 (a wrong key) is an error for readers and writers, 404 is absence', async () => {
  const dir = tempDir('s3u-');
  const server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: dir, configureBuckets: [{ name: 'cache' }] });
  const { port } = await server.run();
  const saved = { id: process.env['AWS_ACCESS_KEY_ID'], secret: process.env['AWS_SECRET_ACCESS_KEY'] };
  const url = `s3://cache?endpoint=http://127.0.0.1:${port}&region=us-east-1`;
  try {
    process.env['AWS_SECRET_ACCESS_KEY'] = 'S3RVER';
    process.env['AWS_ACCESS_KEY_ID'] = 'S3RVER';
    assert.equal(await S3Cache.fromUrl(url).get('traces/absent'), undefined);
    process.env['AWS_ACCESS_KEY_ID'] = 'NOBODY';
    const wrong = S3Cache.fromUrl(url);
    await assert.rejects(wrong.get('traces/absent'), (e: unknown) => e instanceof CacheError && e.status === 403 && e.reason === 'forbidden');
    await assert.rejects(
      appendLines(wrong, 'traces/x', ['{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}']),
      (e: unknown) => e instanceof CacheError && e.status === 403 && e.permanent,
    );
  } finally {
    setEnv({ AWS_ACCESS_KEY_ID: saved.id, AWS_SECRET_ACCESS_KEY: saved.secret });
    await server.close();
  }
});

test('FileCache: a writer never writes through a symbolic link planted in the cache', async () => {
  const root = join(tempDir('fcw-'), 'cache');
  const victim = tempDir('victim-');
  mkdirSync(root);
  symlinkSync(victim, join(root, 'traces'));
  const c = new FileCache(root);
  const line = '{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}';
  await assert.rejects(appendLines(c, 'traces/h', [line]), (e: unknown) => e instanceof CacheError && e.reason === 'not-regular-file');
  await assert.rejects(c.put('traces/h', Buffer.from(line)), /symbolic link/);
  assert.deepEqual(readdirSync(victim), []);
  // and an ordinary cache still works, creating its directories
  const fresh = new FileCache(join(tempDir('fcw-'), 'cache'));
  assert.deepEqual(await appendLines(fresh, 'buildtrace/keys/k.jsonl', ['{"a":1}']), { added: 1, key: 'buildtrace/keys/k.jsonl' });
});

test('CacheSource: the first failure abandons requests in flight and answers every later read', async () => {
  const { createServer } = await import('node:http');
  const seen: string[] = [];
  const server = createServer((req, res) => {
    seen.push(req.url ?? '');
    if (req.url === '/traces/a') {
      res.writeHead(200);
      const chunk = Buffer.alloc(1 << 16, 0x41);
      const pump = (): void => {
        while (!res.destroyed && res.write(chunk));
        if (!res.destroyed) res.once('drain', pump);
      };
      setTimeout(pump, 300);
    }
    // anything else: never answered
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  try {
    const src = new CacheSource(new HttpCache(url, { limits: { requestTimeoutMs: 30_000, retries: 0 } }), {
      limits: { ...DEFAULT_READ_LIMITS, maxObjectBytes: 1 << 20 },
    });
    const t0 = Date.now();
    const b = src.bundles('b');
    // b is in flight (the server has its request) before a fails
    await waitFor(() => seen.includes('/traces/b'), 5000, 'the request for b');
    await assert.rejects(src.bundles('a'), isLimit('maxObjectBytes'));
    await assert.rejects(b, isLimit('maxObjectBytes'));
    assert.ok(Date.now() - t0 < 5000, `${Date.now() - t0} ms: b was abandoned, not left to its 30 s deadline`);
    await assert.rejects(src.bundles('c'), isLimit('maxObjectBytes'));
    assert.deepEqual(seen.sort(), ['/traces/a', '/traces/b'], 'no request after the failure');
  } finally {
    server.closeAllConnections();
    server.close();
  }
});

test("statusError: 403 is permanent and 'forbidden'; S3's RequestTimeTooSkewed 403 is neither", async () => {
  const { statusError } = await import('../src/cache/http-request.js');
  const u = new URL('https://alice:pw@cache.example.org/traces/x');
  const denied = statusError('GET', u, { status: 403, headers: {}, body: Buffer.from('<Error><Code>AccessDenied</Code></Error>') });
  assert.ok(denied.permanent && denied.reason === 'forbidden' && /not "absent"/.test(denied.message));
  const skew = statusError('GET', u, { status: 403, headers: {}, body: Buffer.from('<Error><Code>RequestTimeTooSkewed</Code></Error>') });
  assert.ok(!skew.permanent && skew.reason === undefined && /RequestTimeTooSkewed/.test(skew.message));
  for (const e of [denied, skew]) assert.doesNotMatch(e.message, /alice|pw@/);
});

test('.doi entries: a server without ETags, null, arrays and wrong shapes are refused with a reason, never silently skipped; big ones are bounded', async () => {
  const { addBuildTraceSignature } = await import('../src/cache/build-trace-entry.js');
  const sig = { keyName: 'b-1', sig: 'c2ln' };
  const stored = new Map<string, Buffer>();
  let puts = 0;
  // a server that never sends an ETag for .doi (the old nginx recipe): every conditional write is refused
  const noEtag = {
    url: 'test://no-etag',
    get: async (k: string) => (stored.has(k) ? { body: stored.get(k) as Buffer, etag: '' } : undefined),
    putIf: async (k: string, body: Buffer, ifMatch: string | undefined) => {
      puts++;
      if (ifMatch === undefined && !stored.has(k)) {
        stored.set(k, body);
        return true;
      }
      return false;
    },
    put: async () => {},
  };
  await addBuildTraceSignature(noEtag, 'e.doi', 'out', sig);
  await assert.rejects(
    addBuildTraceSignature(noEtag, 'e.doi', 'out', { keyName: 'b-2', sig: 'eA==' }),
    (e: unknown) => e instanceof CacheError && /gave up after 20 conflicting writes/.test(e.message) && !e.permanent,
  );
  assert.equal(puts, 21);
  const file = new FileCache(join(tempDir('doi-'), 'cache'));
  for (const bad of ['null', '[]', '{"outPath":1}', '{"outPath":"out","signatures":{}}', '{"outPath":"out","signatures":[null]}', 'nope']) {
    await file.put('x.doi', Buffer.from(bad));
    await assert.rejects(
      addBuildTraceSignature(file, 'x.doi', 'out', sig),
      (e: unknown) => e instanceof CacheError && e.reason === 'foreign-object' && /not a build-trace-v2 entry/.test(e.message),
      bad,
    );
  }
  await file.put('big.doi', Buffer.alloc(2 << 20, 0x20));
  await assert.rejects(addBuildTraceSignature(file, 'big.doi', 'out', sig), (e: unknown) => e instanceof BuildtraceError && e.code === 'LIMIT_EXCEEDED');
  // a good entry gets the signature once
  await file.put('ok.doi', Buffer.from('{"outPath":"out","signatures":[]}'));
  await addBuildTraceSignature(file, 'ok.doi', 'out', sig);
  await addBuildTraceSignature(file, 'ok.doi', 'out', sig);
  assert.deepEqual(JSON.parse((await file.get('ok.doi'))?.body.toString() ?? ''), { outPath: 'out', signatures: [sig] });
});

test('appendLines: a trace object past the writer bounds is refused with LIMIT_EXCEEDED naming the bound, untouched', async () => {
  const file = new FileCache(join(tempDir('bound-'), 'cache'));
  const line = '{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}\n';
  await file.put('traces/big', Buffer.from(line.repeat(Math.ceil((9 << 20) / line.length))));
  await assert.rejects(
    appendLines(file, 'traces/big', [line.trim()]),
    (e: unknown) => e instanceof BuildtraceError && e.code === 'LIMIT_EXCEEDED' && /maxObjectBytes \(8388608\)/.test(e.message),
  );
  await file.put('traces/many', Buffer.from(line.repeat(100_001)));
  await assert.rejects(
    appendLines(file, 'traces/many', [line.trim()]),
    (e: unknown) => e instanceof BuildtraceError && e.code === 'LIMIT_EXCEEDED' && /maxLines \(100000\)/.test(e.message),
  );
  assert.equal((await file.get('traces/many'))?.body.length, line.length * 100_001);
});

test('netrc: the machine entry for the cache host is sent (Basic), only to that host; token and URL credentials come first', async () => {
  const { createServer } = await import('node:http');
  const seen: (string | undefined)[] = [];
  const server = createServer((req, res) => {
    seen.push(req.headers.authorization);
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const dir = tempDir('netrc-');
  const netrc = join(dir, 'netrc');
  writeFileSync(netrc, 'machine other.example login eve password nope\nmachine 127.0.0.1\n  login builder\n  password n3trc-pw\ndefault login x password y\n', {
    mode: 0o600,
  });
  const saved = { netrc: process.env['NETRC'], token: process.env['BUILDTRACE_CACHE_TOKEN'] };
  process.env['NETRC'] = netrc;
  delete process.env['BUILDTRACE_CACHE_TOKEN'];
  try {
    assert.equal(await new HttpCache(`http://127.0.0.1:${port}`).get('traces/x'), undefined);
    // localhost is another host name: its entry (none) is looked up, not 127.0.0.1's
    assert.equal(await new HttpCache(`http://localhost:${port}`).get('traces/x'), undefined);
    // credentials in the URL win over netrc
    assert.equal(await new HttpCache(`http://alice:url-pw@127.0.0.1:${port}`).get('traces/x'), undefined);
    assert.deepEqual(seen, [
      `Basic ${Buffer.from('builder:n3trc-pw').toString('base64')}`,
      undefined,
      `Basic ${Buffer.from('alice:url-pw').toString('base64')}`,
    ]);
  } finally {
    if (saved.netrc === undefined) delete process.env['NETRC'];
    else process.env['NETRC'] = saved.netrc;
    if (saved.token !== undefined) process.env['BUILDTRACE_CACHE_TOKEN'] = saved.token;
    await new Promise<void>((r) => server.close(() => r()));
  }
});
