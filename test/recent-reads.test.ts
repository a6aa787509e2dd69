import assert from 'node:assert/strict';
import { mkdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { openCache } from '../src/cache/open.js';
import { RecentBundles, RecentReads } from '../src/serve/recent-reads.js';
import { CacheSource } from '../src/verify/sources.js';
import { tempDir } from './helpers.js';

/** A bundle line as the cache reader takes it (what is inside does not matter here). */
const line = (n: number): string => JSON.stringify({ mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json', n });
const HASH = 'a'.repeat(32);

async function fixture(): Promise<{ write: (lines: string[] | undefined) => void; source: () => Promise<CacheSource> }> {
  const dir = tempDir('recent-reads-');
  mkdirSync(join(dir, 'traces'));
  const file = join(dir, 'traces', HASH);
  return {
    write: (lines) => (lines ? writeFileSync(file, `${lines.join('\n')}\n`) : unlinkSync(file)),
    source: async () => new CacheSource(await openCache(`file://${dir}`)),
  };
}

test('RecentBundles: within the window a verification is handed the earlier read, and `used` names those lines, not what the cache holds now', async () => {
  const f = await fixture();
  let windowMs = 60_000;
  const recent = new RecentReads<string[]>(() => windowMs);
  f.write([line(1)]);
  const first = new RecentBundles(await f.source(), recent);
  assert.equal(first.used(HASH), undefined, 'nothing handed out yet');
  assert.deepEqual(await first.bundles(HASH), [line(1)]);
  // the trace is edited upstream; a later verification within the window is handed the earlier read
  f.write([line(2)]);
  const second = new RecentBundles(await f.source(), recent);
  assert.deepEqual(await second.bundles(HASH), [line(1)]);
  assert.deepEqual(second.used(HASH), [line(1)]);
  // past the window: read again
  windowMs = 0;
  const third = new RecentBundles(await f.source(), recent);
  assert.deepEqual(await third.bundles(HASH), [line(2)]);
  assert.deepEqual(third.used(HASH), [line(2)]);
  // deleted: an empty read is a read too (a no-bundle verdict is decided on it)
  f.write(undefined);
  const fourth = new RecentBundles(await f.source(), recent);
  assert.deepEqual(await fourth.bundles(HASH), []);
  assert.deepEqual(fourth.used(HASH), []);
});

test('RecentBundles: a hash read twice in one verification with different lines (the window ended in between) has no `used` lines: no verdict is kept on it', async () => {
  const f = await fixture();
  let windowMs = 60_000;
  const recent = new RecentReads<string[]>(() => windowMs);
  f.write([line(1)]);
  const one = new RecentBundles(await f.source(), recent);
  await one.bundles(HASH);
  // the same read again (from the window): still the lines decided on
  await one.bundles(HASH);
  assert.deepEqual(one.used(HASH), [line(1)]);
  f.write([line(1), line(3)]);
  windowMs = 0;
  assert.deepEqual(await one.bundles(HASH), [line(1), line(3)]);
  assert.equal(one.used(HASH), undefined);
  // and it stays so: a third read equal to the first does not make the two agree
  f.write([line(1)]);
  await one.bundles(HASH);
  assert.equal(one.used(HASH), undefined);
  // equal lines read afresh (another array, same content) are the same read
  const two = new RecentBundles(await f.source(), recent);
  await two.bundles(HASH);
  await two.bundles(HASH);
  assert.deepEqual(two.used(HASH), [line(1)]);
});
