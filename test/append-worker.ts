/**
 * A publisher stand-in for test/concurrent-append.test.ts, run as its own process:
 * `node append-worker.js <cacheUrl> <writer> <rounds> <keys> <run> [lines|doi] [maxDelayMs]`. Each round waits for a
 * line on stdin, then appends one line (the same length for every writer) to each of `keys` objects
 * (`buildtrace/stress/<run>/…`) — or, with `doi`, adds its signature to each of `keys`
 * build-trace-v2 entries (`build-trace-v2/stress-<run>-…`) —
 * eight at a time as the daemon's publisher does, and prints `done`.
 */
import { createInterface } from 'node:readline';
import { appendLines, type CacheBackend } from '../src/cache/backend.js';
import { addBuildTraceSignature } from '../src/cache/build-trace-entry.js';
import { openCache } from '../src/cache/open.js';

const [url, writer, rounds, keys, run, mode = 'lines', maxDelay = '15'] = process.argv.slice(2);
if (!url || !writer || !rounds || !keys || !run) throw new Error('usage: append-worker <cacheUrl> <writer> <rounds> <keys> <run>');
const real = await openCache(url);
// A publisher descheduled between its read and its write (a loaded CI machine): each read
// answers up to `maxDelay` ms late (15 by default), so writes race stale reads often instead
// of once in a while.
const cache: CacheBackend = {
  url: real.url,
  get: async (key, opts) => {
    const o = await real.get(key, opts);
    await new Promise((r) => setTimeout(r, Math.random() * Number(maxDelay)));
    return o;
  },
  putIf: (key, body, ifMatch, type) => real.putIf(key, body, ifMatch, type),
  put: (key, body, type) => real.put(key, body, type),
};
const input = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
for (let r = 0; r < Number(rounds); r++) {
  await input.next();
  const names = Array.from({ length: Number(keys) }, (_, k) =>
    mode === 'doi' ? `build-trace-v2/stress-${run}-r${r}-k${k}.drv/out.doi` : `buildtrace/stress/${run}/r${r}-k${k}.jsonl`,
  );
  const one = (k: string): Promise<unknown> =>
    mode === 'doi'
      ? addBuildTraceSignature(cache, k, 'stress-out', { keyName: `writer-${writer.padStart(4, '0')}`, sig: Buffer.from(k).toString('base64') })
      : appendLines(cache, k, [JSON.stringify({ writer: writer.padStart(4, '0'), key: k })]);
  for (let i = 0; i < names.length; i += 8) await Promise.all(names.slice(i, i + 8).map(one));
  process.stdout.write('done\n');
}
process.exit(0);
