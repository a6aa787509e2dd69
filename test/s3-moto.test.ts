// ci: nix (runs on every Nix: the host and the trixie and sid chroots; see scripts/run-tests.sh)
// No Nix here: the marker puts it in the chroot stages, whose Debian has moto (python3-moto),
// an S3 server that checks SigV4 signatures. The host (Debian 12) has no moto: skipped there.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { appendLines, preconditionsChecked } from '../src/cache/backend.js';
import { openCache } from '../src/cache/open.js';
import { S3Cache } from '../src/cache/s3-cache.js';
import { requireOrSkip, setEnv, tempDir } from './helpers.js';
import { MOTO_VERSION, MOTO_WHY, type Moto, motoChecksIfMatch, routeOnly, startMoto } from './moto.js';

describe('S3 against moto with authentication on: SigV4 is verified, conditional writes are honoured', () => {
  let moto: Moto | undefined;
  let base = '';
  let key = { id: '', secret: '' };
  const saved = { id: process.env['AWS_ACCESS_KEY_ID'], secret: process.env['AWS_SECRET_ACCESS_KEY'], file: process.env['AWS_SHARED_CREDENTIALS_FILE'] };
  const url = (extra = ''): string => `s3://cache?endpoint=${base}&region=us-east-1${extra}`;

  before(async () => {
    if (MOTO_VERSION === undefined) return;
    moto = await startMoto(['cache']);
    base = moto.base;
    key = moto.key;
  });

  after(async () => {
    setEnv({ AWS_ACCESS_KEY_ID: saved.id, AWS_SECRET_ACCESS_KEY: saved.secret, AWS_SHARED_CREDENTIALS_FILE: saved.file });
    await moto?.stop();
  });

  test('signed PUT and GET with the right key; conditional append; the same requests with a wrong secret key are refused', async (t) => {
    if (!requireOrSkip(t, 'moto', MOTO_VERSION !== undefined, MOTO_WHY)) return;
    setEnv({ AWS_ACCESS_KEY_ID: key.id, AWS_SECRET_ACCESS_KEY: key.secret, AWS_SHARED_CREDENTIALS_FILE: join(tempDir(), 'none') });
    const cache = S3Cache.fromUrl(url());
    const line = (i: number): string => JSON.stringify({ mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json', n: i });
    assert.deepEqual(await appendLines(cache, 'traces/moto', [line(1)]), { added: 1, key: 'traces/moto' });
    assert.deepEqual(await appendLines(cache, 'traces/moto', [line(2), line(1)]), { added: 1, key: 'traces/moto' });
    const got = await cache.get('traces/moto');
    assert.equal(got?.body.toString('utf8'), `${line(1)}\n${line(2)}\n`);
    // If-None-Match: * on an existing object, and If-Match with a stale ETag
    assert.equal(await cache.putIf('traces/moto', Buffer.from('x\n'), undefined, 'application/jsonl'), false, 'If-None-Match: * is honoured');
    const checksIfMatch = motoChecksIfMatch(MOTO_VERSION as string);
    assert.equal(await cache.putIf('traces/if-match', Buffer.from('first\n'), undefined, 'application/jsonl'), true);
    assert.equal(await cache.putIf('traces/if-match', Buffer.from('stale\n'), '"0123456789abcdef0123456789abcdef"', 'application/jsonl'), !checksIfMatch);
    const current = await cache.get('traces/if-match');
    assert.equal(current?.body.toString('utf8'), checksIfMatch ? 'first\n' : 'stale\n');
    assert.equal(await cache.putIf('traces/if-match', Buffer.from('next\n'), current?.etag, 'application/jsonl'), true, 'the current ETag matches');
    assert.equal(await preconditionsChecked(await openCache(url())), checksIfMatch, `moto ${MOTO_VERSION}`);
    t.diagnostic(`moto ${MOTO_VERSION}: If-Match on PUT ${checksIfMatch ? 'checked' : 'ignored (the read-back guards a single publisher)'}`);
    assert.equal((await cache.get('traces/moto'))?.body.toString('utf8'), `${line(1)}\n${line(2)}\n`, 'the refused writes changed nothing');

    // the same client with one character of the secret changed: moto recomputes the signature
    const wrongSecret = key.secret.slice(0, -1) + (key.secret.endsWith('A') ? 'B' : 'A');
    setEnv({ AWS_SECRET_ACCESS_KEY: wrongSecret });
    const bad = S3Cache.fromUrl(url());
    await assert.rejects(bad.put('traces/forged', Buffer.from('forged\n'), 'application/jsonl'), /HTTP 403/);
    await assert.rejects(bad.get('traces/moto'), /HTTP 403/);
    await assert.rejects(appendLines(bad, 'traces/moto', [line(3)]), /HTTP 403/);
    const raw = await fetch(`${base}/cache/traces/moto`, { headers: { authorization: routeOnly('s3'), 'x-amz-date': '20260101T000000Z' } });
    assert.equal(raw.status, 403);
    assert.match(await raw.text(), /SignatureDoesNotMatch|InvalidAccessKeyId|AccessDenied/);
    setEnv({ AWS_SECRET_ACCESS_KEY: key.secret });
    assert.equal((await cache.get('traces/forged')) ?? 'absent', 'absent', 'nothing was written with the wrong key');
  });

  test('AWS_SHARED_CREDENTIALS_FILE: the profile named in the URL, else default, signs; a wrong key there is refused', async (t) => {
    if (!requireOrSkip(t, 'moto', MOTO_VERSION !== undefined, MOTO_WHY)) return;
    const file = join(tempDir(), 'credentials');
    writeFileSync(
      file,
      `[default]\naws_access_key_id = ${key.id}\naws_secret_access_key = not-the-secret\n\n[publisher]\naws_access_key_id = ${key.id}\naws_secret_access_key = ${key.secret}\n`,
      { mode: 0o600 },
    );
    setEnv({ AWS_ACCESS_KEY_ID: undefined, AWS_SECRET_ACCESS_KEY: undefined, AWS_SHARED_CREDENTIALS_FILE: file });
    const good = S3Cache.fromUrl(url('&profile=publisher'));
    assert.deepEqual(await appendLines(good, 'traces/profile', ['{"p":1}']), { added: 1, key: 'traces/profile' });
    assert.equal((await good.get('traces/profile'))?.body.toString('utf8'), '{"p":1}\n');
    await assert.rejects(S3Cache.fromUrl(url()).get('traces/profile'), /HTTP 403/, 'the default profile holds a wrong secret');
  });
});
