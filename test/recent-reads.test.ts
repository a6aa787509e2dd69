import assert from 'node:assert/strict';
import { mkdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { openCache } from '../src/cache/open.js';
import { decidedOn, joinDecidedOn, RecentBundles, RecentReads, readDigest } from '../src/serve/recent-reads.js';
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

/** The digest a kept verdict is keyed on when one source handed out `lines`. */
const d = (...lines: string[]): string => readDigest([lines]);

test('decidedOn: within the window a verification is handed the earlier read, and is keyed on those lines, not on what the cache holds now', async () => {
  const f = await fixture();
  let windowMs = 60_000;
  const recent = new RecentReads<string[]>(() => windowMs);
  f.write([line(1)]);
  const first = new RecentBundles(await f.source(), recent);
  assert.equal(decidedOn([first]).size, 0, 'nothing handed out yet');
  assert.deepEqual(await first.bundles(HASH), [line(1)]);
  // the trace is edited upstream; a later verification within the window is handed the earlier read
  f.write([line(2)]);
  const second = new RecentBundles(await f.source(), recent);
  assert.deepEqual(await second.bundles(HASH), [line(1)]);
  assert.equal(decidedOn([second]).get(HASH), d(line(1)));
  // past the window: read again
  windowMs = 0;
  const third = new RecentBundles(await f.source(), recent);
  assert.deepEqual(await third.bundles(HASH), [line(2)]);
  assert.equal(decidedOn([third]).get(HASH), d(line(2)));
  // deleted: an empty read is a read too (a no-bundle verdict is decided on it)
  f.write(undefined);
  const fourth = new RecentBundles(await f.source(), recent);
  assert.deepEqual(await fourth.bundles(HASH), []);
  assert.equal(decidedOn([fourth]).get(HASH), d());
});

test('decidedOn: a hash read twice in one verification with different lines (the window ended in between) is not known exactly; one a second cache failed to read is not either', async () => {
  const f = await fixture();
  let windowMs = 60_000;
  const recent = new RecentReads<string[]>(() => windowMs);
  f.write([line(1)]);
  const one = new RecentBundles(await f.source(), recent);
  await one.bundles(HASH);
  // the same read again (from the window): still the lines decided on
  await one.bundles(HASH);
  assert.equal(decidedOn([one]).get(HASH), d(line(1)));
  f.write([line(1), line(3)]);
  windowMs = 0;
  assert.deepEqual(await one.bundles(HASH), [line(1), line(3)]);
  assert.equal(decidedOn([one]).get(HASH), null);
  assert.ok(decidedOn([one]).has(HASH));
  // and it stays so: a third read equal to the first does not make the two agree
  f.write([line(1)]);
  await one.bundles(HASH);
  assert.equal(decidedOn([one]).get(HASH), null);
  // equal lines read afresh (another array, same content) are the same read
  const two = new RecentBundles(await f.source(), recent);
  await two.bundles(HASH);
  await two.bundles(HASH);
  assert.equal(decidedOn([two]).get(HASH), d(line(1)));
  // two caches, the second's read failed (its trace object is a directory): not known exactly
  const bad = tempDir('recent-reads-bad-');
  mkdirSync(join(bad, 'traces', HASH), { recursive: true });
  const broken = new RecentBundles(new CacheSource(await openCache(`file://${bad}`)), recent);
  const both = [new RecentBundles(await f.source(), recent), broken];
  await both[0]?.bundles(HASH);
  await assert.rejects(broken.bundles(HASH));
  assert.equal(decidedOn(both).get(HASH), null);
});

test("joinDecidedOn: a seeded verdict is keyed on its seed's lines and its own; any disagreement or unknown one is unknown, and stays so down a chain of seeds", () => {
  const X = 'x'.repeat(32);
  const Y = 'y'.repeat(32);
  const seedA = new Map([[X, d(line(1))]]);
  // its own reads agree, or it did not read X again (settled): X keeps the seed's lines
  assert.deepEqual(joinDecidedOn(seedA, new Map([[X, d(line(1))]])), seedA);
  assert.deepEqual(joinDecidedOn(seedA, new Map([[Y, d(line(2))]])), new Map([...seedA, [Y, d(line(2))]]));
  // X deleted upstream and read again by the seeded verdict: the two disagree
  const b = joinDecidedOn(seedA, new Map([[X, d()]]));
  assert.equal(b.get(X), null);
  // the next seeded verdict (seeded by b's seed) reads X as deleted too: still unknown, never the new lines
  const c = joinDecidedOn(b, new Map([[X, d()]]));
  assert.equal(c.get(X), null);
  assert.equal(joinDecidedOn(new Map([[X, null]]), new Map([[X, null]])).get(X), null);
  assert.equal(joinDecidedOn(new Map([[X, d()]]), new Map([[X, null]])).get(X), null);
});
