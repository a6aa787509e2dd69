import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CacheBackend } from '../src/cache/backend.js';
import { NarPrefetch } from '../src/serve/nar-prefetch.js';
import type { NarRoute } from '../src/serve/substituter.js';

const route = (path: string, narSha256: string, narSize: number): NarRoute => ({
  cache: { url: 'file:///nowhere' } as CacheBackend,
  key: `nar/${path}.nar`,
  compression: 'none',
  fileSize: undefined,
  narSha256,
  narSize,
  path: `/nix/store/${path}-x`,
});
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

test('a read-ahead NAR is handed out once, only for a route with the same hash, never while still reading', async () => {
  const gates = new Map<string, () => void>();
  const reads: string[] = [];
  const p = new NarPrefetch({
    maxNarBytes: 100,
    maxTotalBytes: 250,
    keepMs: 60_000,
    concurrency: 2,
    read: (r) => {
      reads.push(r.path);
      return new Promise((resolve, reject) =>
        gates.set(r.path, () => (r.narSha256 === 'bad' ? reject(new Error('upstream failed')) : resolve(Buffer.alloc(r.narSize, 1)))),
      );
    },
  });
  const a = route('a', 'aa', 100);
  p.start('a', a);
  await tick();
  // still reading: the request streams the NAR itself instead of waiting
  assert.equal(p.take('a', a), undefined);
  gates.get(a.path)?.();
  await tick();
  // taken (and dropped) above while reading: nothing is kept for it any more
  assert.equal(p.take('a', a), undefined);

  p.start('a', a);
  await tick();
  gates.get(a.path)?.();
  await tick();
  assert.equal(p.take('a', route('a', 'other', 100)), undefined, 'another hash for the same path is never served the held bytes');
  p.start('a', a);
  await tick();
  gates.get(a.path)?.();
  await tick();
  const got = p.take('a', a);
  assert.equal(got?.length, 100);
  assert.equal(p.take('a', a), undefined, 'once');

  // bounds: bigger than maxNarBytes is not read; past maxTotalBytes not either
  const n = reads.length;
  p.start('big', route('big', 'bb', 101));
  p.start('c', route('c', 'cc', 100));
  p.start('d', route('d', 'dd', 100));
  p.start('e', route('e', 'ee', 100));
  await tick();
  assert.deepEqual(reads.slice(n), ['/nix/store/c-x', '/nix/store/d-x'], 'the third 100-byte NAR does not fit in 250 bytes');
  gates.get('/nix/store/c-x')?.();
  gates.get('/nix/store/d-x')?.();
  await tick();
  assert.equal(p.take('c', route('c', 'cc', 100))?.length, 100);
  p.start('e', route('e', 'ee', 100));
  await tick();
  assert.equal(reads.at(-1), '/nix/store/e-x', 'room given back by a NAR handed out');
  gates.get('/nix/store/e-x')?.();
  await tick();
  // d and e held: 200 of 250; a failed read gives its room back
  p.start('f', route('f', 'bad', 40));
  await tick();
  gates.get('/nix/store/f-x')?.();
  await tick();
  assert.equal(p.take('f', route('f', 'bad', 40)), undefined);
  p.start('g', route('g', 'gg', 50));
  await tick();
  assert.equal(reads.at(-1), '/nix/store/g-x', 'room for 50 after the failed 40 was given back');
});

test('read-ahead bytes older than keepMs are not served', async () => {
  const p = new NarPrefetch({ maxNarBytes: 10, maxTotalBytes: 10, keepMs: 20, concurrency: 1, read: async (r) => Buffer.alloc(r.narSize) });
  const r = route('a', 'aa', 10);
  p.start('a', r);
  await new Promise((res) => setTimeout(res, 40));
  assert.equal(p.take('a', r), undefined);
  // and their room is free again
  p.start('b', route('b', 'bb', 10));
  await tick();
  assert.equal(p.take('b', route('b', 'bb', 10))?.length, 10);
});
