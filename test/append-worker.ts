/**
 * A publisher stand-in for test/concurrent-append.test.ts, run as its own process:
 * `node append-worker.js <cacheUrl> <writer> <rounds> <keys> <run>`. Each round waits for a line on
 * stdin, then appends one line (the same length for every writer) to each of `keys` objects
 * (`buildtrace/stress/<run>/…`),
 * eight at a time as the daemon's publisher does, and prints `done`.
 */
import { createInterface } from 'node:readline';
import { appendLines, type CacheBackend } from '../src/cache/backend.js';
import { openCache } from '../src/cache/open.js';

const [url, writer, rounds, keys, run] = process.argv.slice(2);
if (!url || !writer || !rounds || !keys || !run) throw new Error('usage: append-worker <cacheUrl> <writer> <rounds> <keys> <run>');
const real = await openCache(url);
// A publisher descheduled between its read and its write (a loaded CI machine): each read
// answers up to 15 ms late, so writes race stale reads often instead of once in a while.
const cache: CacheBackend = {
  url: real.url,
  get: async (key, opts) => {
    const o = await real.get(key, opts);
    await new Promise((r) => setTimeout(r, Math.random() * 15));
    return o;
  },
  putIf: (key, body, ifMatch, type) => real.putIf(key, body, ifMatch, type),
  put: (key, body, type) => real.put(key, body, type),
};
const input = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
for (let r = 0; r < Number(rounds); r++) {
  await input.next();
  const names = Array.from({ length: Number(keys) }, (_, k) => `buildtrace/stress/${run}/r${r}-k${k}.jsonl`);
  for (let i = 0; i < names.length; i += 8)
    await Promise.all(names.slice(i, i + 8).map((k) => appendLines(cache, k, [JSON.stringify({ writer: writer.padStart(4, '0'), key: k })])));
  process.stdout.write('done\n');
}
process.exit(0);
