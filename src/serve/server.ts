/**
 * The substituter's HTTP side: a binary cache for stock Nix on loopback. Routes to the
 * decisions in substituter.ts; a refusal is a 404 (Nix reads "not in this cache") whose
 * reason goes to the state database; a NAR that differs from the attested one is cut off.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { type Duplex, type Readable, type Transform, Writable } from 'node:stream';
import { BuildtraceError, errorMessage } from '../errors.js';
import { byteCap, decompressor, narCheck, NarMismatch } from './nar-stream.js';
import { NarPrefetch } from './nar-prefetch.js';
import type { StateDb } from './state-db.js';
import type { NarRoute, Substituter } from './substituter.js';

const NARINFO = /^\/([0-9a-df-np-sv-z]{32})\.narinfo$/;
const NAR = /^\/nar\/([0-9a-df-np-sv-z]{32})\.nar$/;
const REALISATION = /^\/realisations\/sha256:([0-9a-f]{64})!([A-Za-z0-9+\-._?=]+)\.doi$/;
/** Nix >= 2.35: `build-trace-v2/<resolved drv base name>/<output>.doi` (BinaryCacheStore::makeRealisationPath) */
const BUILD_TRACE = /^\/build-trace-v2\/([0-9a-df-np-sv-z]{32}-[A-Za-z0-9+\-._?=]+\.drv)\/([A-Za-z0-9+\-._?=]+)\.doi$/;

/** A NAR no bigger than this per second is still "streaming" (the deadline grows with the size). */
const MIN_BYTES_PER_SECOND = 1 << 20;
/** The longest delay a Node timer takes. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** NARs read ahead when their narinfo is answered (nar-prefetch.ts): small ones, bounded in all. */
const PREFETCH = { maxNarBytes: 256 << 10, maxTotalBytes: 64 << 20, keepMs: 30_000, concurrency: 4 };

/** How a route's upstream bytes become the NAR served: capped, decompressed, checked (nar-stream.ts). */
function narStages(route: NarRoute, what: string): [Transform, Duplex, Transform] {
  // compressed bytes: at most FileSize (unattested, so never more than the NAR size plus
  // room for a compressor's overhead: an absurd FileSize bounds nothing)
  const cap = Math.min(route.fileSize ?? Number.POSITIVE_INFINITY, route.narSize + Math.floor(route.narSize / 8) + (1 << 16));
  return [byteCap(cap, what), decompressor(route.compression, what), narCheck(route.narSha256, route.narSize, what)];
}

const describe = (route: NarRoute): string => `${route.cache.url}/${route.key} (${route.path})`;

function send(res: ServerResponse, status: number, type: string, body: string, head: boolean): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(head ? undefined : body);
}

export function startServer(
  sub: Substituter,
  state: StateDb,
  opts: { host: string; port: number; requestTimeoutMs: number; log: (m: string) => void },
): Promise<Server> {
  // a timer longer than 2^31-1 ms fires at once (Node clamps it): an absurd NarSize must not do that
  const deadlineMs = (route: NarRoute): number => Math.min(opts.requestTimeoutMs + Math.ceil((route.narSize / MIN_BYTES_PER_SECOND) * 1000), MAX_TIMER_MS);
  const prefetch = new NarPrefetch({
    ...PREFETCH,
    read: async (route) => {
      const body = await route.cache.openStream?.(route.key, { deadlineMs: deadlineMs(route) });
      if (!body) throw new BuildtraceError('CACHE_ERROR', `${describe(route)}: gone upstream`);
      const chunks: Buffer[] = [];
      const sink = new Writable({
        write(c: Buffer, _enc, cb) {
          chunks.push(c);
          cb();
        },
      });
      await pipeline(body, ...narStages(route, describe(route)), sink);
      return Buffer.concat(chunks);
    },
  });
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const head = req.method === 'HEAD';
    if (req.method !== 'GET' && !head) return send(res, 405, 'text/plain', 'only GET and HEAD\n', head);
    const url = decodeURIComponent((req.url ?? '/').split('?')[0] as string);
    if (url === '/nix-cache-info') return send(res, 200, 'text/x-nix-cache-info', 'StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 30\n', head);
    let m = NARINFO.exec(url);
    if (m) {
      const a = await sub.narinfo(m[1] as string);
      if (a.ok) {
        if (!head) prefetch.start(m[1] as string, a.value.route);
        return send(res, 200, 'text/x-nix-narinfo', a.value.text, head);
      }
      return send(res, 404, 'text/plain', `refused: ${a.codes.join(', ')}: ${a.reason}\n`, head);
    }
    m = REALISATION.exec(url);
    if (m) {
      const a = await sub.realisation(m[1] as string, m[2] as string);
      if (a.ok) return send(res, 200, 'application/json', a.value, head);
      return send(res, 404, 'text/plain', `refused: ${a.codes.join(', ')}: ${a.reason}\n`, head);
    }
    m = BUILD_TRACE.exec(url);
    if (m) {
      const a = await sub.buildTrace(m[1] as string, m[2] as string);
      if (a.ok) return send(res, 200, 'application/json', a.value, head);
      return send(res, 404, 'text/plain', `refused: ${a.codes.join(', ')}: ${a.reason}\n`, head);
    }
    m = NAR.exec(url);
    if (m) {
      const route = await sub.narRoute(m[1] as string);
      if (!route) return send(res, 404, 'text/plain', 'no verified NAR here\n', head);
      const what = describe(route);
      if (!route.cache.openStream) return send(res, 502, 'text/plain', `${route.cache.url}: cannot stream NARs from this kind of cache\n`, head);
      const ready = head ? undefined : prefetch.take(m[1] as string, route);
      if (ready) {
        // read ahead and already checked against this route's attested hash and size
        res.writeHead(200, { 'content-type': 'application/x-nix-nar', 'content-length': ready.length });
        res.end(ready);
        state.count('narsServed');
        return;
      }
      let body: Readable | undefined;
      try {
        body = await route.cache.openStream(route.key, { deadlineMs: deadlineMs(route) });
      } catch (err) {
        // a redirect, a 5xx, a symbolic link or FIFO in a file:// cache, a refused connection:
        // kept for status like any refusal, and a 502 (Nix retries a few times, then gives up)
        const code = err instanceof BuildtraceError ? err.code : 'CACHE_ERROR';
        state.refusal(route.path, undefined, [code], `NAR from ${what}: ${errorMessage(err)}`);
        opts.log(`NAR ${route.path}: ${errorMessage(err)}`);
        return send(res, 502, 'text/plain', `NAR from ${what}: ${errorMessage(err)}\n`, head);
      }
      if (!body) {
        state.refusal(route.path, undefined, ['CACHE_ERROR'], `NAR from ${what}: gone upstream (404)`);
        return send(res, 404, 'text/plain', `${what}: gone upstream\n`, head);
      }
      res.writeHead(200, { 'content-type': 'application/x-nix-nar', 'content-length': route.narSize });
      if (head) {
        body.destroy();
        res.end();
        return;
      }
      try {
        await pipeline(body, ...narStages(route, what), res);
        state.count('narsServed');
      } catch (err) {
        // headers are gone: the only thing left to do is never to finish the body
        res.destroy();
        const e = err as NodeJS.ErrnoException;
        if (e.code === 'ERR_STREAM_PREMATURE_CLOSE') {
          // the client hung up (Nix gave up or was stopped): nothing to hold against the upstream
          opts.log(`NAR ${route.path}: the client went away`);
          return;
        }
        // Node's own word for an upstream that closed mid-body is "aborted"
        const why = e.code === 'ECONNRESET' ? `the upstream closed the connection mid-body (${errorMessage(err)})` : errorMessage(err);
        if (err instanceof NarMismatch) {
          state.count('narsCutOff');
          state.refusal(route.path, undefined, ['content-mismatch'], `NAR cut off: ${why}`);
        } else
          state.refusal(
            route.path,
            undefined,
            [err instanceof BuildtraceError ? err.code : 'CACHE_ERROR'],
            why.includes(what) ? why : `NAR from ${what}: ${why}`,
          );
        opts.log(`NAR ${route.path}: ${why}`);
      }
      return;
    }
    send(res, 404, 'text/plain', 'not found\n', head);
  };
  const server = createServer({ keepAlive: true }, (req, res) => {
    handle(req, res).catch((err: unknown) => {
      opts.log(`${req.url}: ${errorMessage(err)}`);
      if (!res.headersSent) send(res, 500, 'text/plain', `internal error: ${errorMessage(err)}\n`, false);
      else res.destroy();
    });
  });
  server.maxConnections = 1024;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve(server));
  });
}
