import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import S3rver from 's3rver';
import { preconditionsChecked } from '../src/cache/backend.js';
import { openCache } from '../src/cache/open.js';
import { tempDir } from './helpers.js';
import { startNginx } from './nginx.js';

const WORKER = fileURLToPath(new URL('./append-worker.js', import.meta.url));

/**
 * `writers` processes append one same-length line each to the same `keys` objects at once
 * (with `doi`: add one signature each to the same `keys` build-trace-v2 entries), `rounds`
 * times; returns what is missing afterwards. Separate processes, as two daemons are: only the
 * cache serialises them.
 */
async function stress(
  url: string,
  writers: number,
  rounds: number,
  keys: number,
  mode: 'lines' | 'doi' = 'lines',
  maxDelayMs = 15,
): Promise<{ expected: number; missing: string[] }> {
  const run = randomBytes(4).toString('hex');
  const procs = Array.from({ length: writers }, (_, w) =>
    spawn(process.execPath, [WORKER, url, String(w), String(rounds), String(keys), run, mode, String(maxDelayMs)], { stdio: ['pipe', 'pipe', 'inherit'] }),
  );
  const outs = procs.map((p) => createInterface({ input: p.stdout })[Symbol.asyncIterator]());
  const exits = procs.map((p) => new Promise<number | null>((r) => p.once('exit', (code) => r(code))));
  const cache = await openCache(url);
  const missing: string[] = [];
  try {
    for (let r = 0; r < rounds; r++) {
      for (const p of procs) p.stdin.write('go\n');
      for (const o of outs) assert.equal((await o.next()).value, 'done', 'a writer failed (see its stderr)');
      for (let k = 0; k < keys; k++) {
        if (mode === 'doi') {
          const key = `build-trace-v2/stress-${run}-r${r}-k${k}.drv/out.doi`;
          const v = JSON.parse((await cache.get(key))?.body.toString('utf8') ?? '{"signatures":[]}') as { signatures: { keyName: string }[] };
          const names = v.signatures.map((s) => s.keyName);
          assert.equal(new Set(names).size, names.length, `${key}: a signature twice`);
          if (names.length !== writers) missing.push(`${key}: ${names.length} of ${writers}`);
          continue;
        }
        const key = `buildtrace/stress/${run}/r${r}-k${k}.jsonl`;
        const lines = ((await cache.get(key))?.body.toString('utf8') ?? '').split('\n').filter(Boolean);
        assert.equal(new Set(lines).size, lines.length, `${key}: a line twice`);
        if (lines.length !== writers) missing.push(`${key}: ${lines.length} of ${writers}`);
      }
    }
  } finally {
    for (const p of procs) p.stdin.end();
    await Promise.all(exits);
  }
  return { expected: writers * rounds * keys, missing };
}

describe('concurrent publishers append to the same objects (separate processes, same-length lines)', () => {
  // about 4 s per backend here; the lost line these guard against showed up once in 120
  test('file:// (lock file, compare, rename): every line kept', async () => {
    const url = `file://${join(tempDir('stress-file-'), 'cache')}`;
    assert.equal(await preconditionsChecked(await openCache(url)), true);
    const r = await stress(url, 2, 8, 40);
    assert.deepEqual(r.missing, [], `${r.missing.length} of ${r.expected} lines lost`);
  });

  test('nginx with the Lua precondition checks (412/409, content-hash ETags): every line kept', async () => {
    const nginx = await startNginx();
    try {
      assert.equal(await preconditionsChecked(await openCache(nginx.url)), true);
      const r = await stress(nginx.url, 2, 8, 40);
      assert.deepEqual(r.missing, [], `${r.missing.length} of ${r.expected} lines lost`);
    } finally {
      await nginx.stop();
    }
  });

  test('nginx+Lua with 2 workers, 3 publishers, 10,000 appends each to shared trace objects and 10,000 signatures each to shared .doi entries: nothing lost', {
    timeout: 600_000,
  }, async (t) => {
    const nginx = await startNginx({ workers: 2 });
    try {
      for (const mode of ['lines', 'doi'] as const) {
        const t0 = Date.now();
        const r = await stress(nginx.url, 3, 25, 400, mode, 2);
        t.diagnostic(`${mode}: ${r.expected} appends by 3 publishers in ${Date.now() - t0} ms, ${r.missing.length} objects short`);
        assert.deepEqual(r.missing, [], `${mode}: ${r.missing.length} objects short of ${r.expected / 3}`);
      }
    } finally {
      await nginx.stop();
    }
  });

  test('servers that ignore preconditions (stock nginx WebDAV, s3rver) are told apart', async () => {
    // there concurrent appends can lose lines whatever the writer does (the read-back only sees
    // an overwrite that came before it); the daemon warns, and README says one publisher only
    const plain = await startNginx({ conditional: false });
    const s3 = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: tempDir('stress-s3-'), configureBuckets: [{ name: 'cache' }] });
    const { port } = await s3.run();
    const env = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' };
    const saved = { id: process.env['AWS_ACCESS_KEY_ID'], secret: process.env['AWS_SECRET_ACCESS_KEY'] };
    Object.assign(process.env, env);
    try {
      assert.equal(await preconditionsChecked(await openCache(plain.url)), false, 'stock nginx');
      // and there the harness above does lose lines (about one in five here): it can fail
      const r = await stress(plain.url, 2, 4, 40);
      assert.ok(r.missing.length > 0, 'stock nginx lost no line: the stress no longer races');
      assert.equal(await preconditionsChecked(await openCache(`s3://cache?endpoint=http://127.0.0.1:${port}&region=us-east-1`)), false, 's3rver');
    } finally {
      if (saved.id === undefined) delete process.env['AWS_ACCESS_KEY_ID'];
      else process.env['AWS_ACCESS_KEY_ID'] = saved.id;
      if (saved.secret === undefined) delete process.env['AWS_SECRET_ACCESS_KEY'];
      else process.env['AWS_SECRET_ACCESS_KEY'] = saved.secret;
      await Promise.all([plain.stop(), s3.close()]);
    }
  });
});
