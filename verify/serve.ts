/**
 * `trace-verify serve`: the verifying substituter (src/serve/), and `serve status`.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { BuildtraceError, errorMessage, EXIT_OK } from '../src/errors.js';
import { openCache } from '../src/cache/open.js';
import { LIMIT_FLAGS, readLimitsFrom } from '../src/cache/limits.js';
import { formatPublicKey } from '../src/nix/nix-key.js';
import { FetchedDerivations } from '../src/serve/fetched-derivations.js';
import { LocalDerivations } from '../src/serve/local-derivations.js';
import { startServer } from '../src/serve/server.js';
import { loadOrCreateKey } from '../src/serve/signing-key.js';
import { readStatus, StateDb, type StatusReport } from '../src/serve/state-db.js';
import { Substituter } from '../src/serve/substituter.js';
import { DrvLoader } from '../src/store/drv-loader.js';
import { parseArgs } from '../src/util/args.js';
import { LocalStoreFacts } from '../src/verify/store-facts.js';

export const SERVE_HELP = `  trace-verify serve --policy FILE --cache URL... [--listen 127.0.0.1:PORT] [--state-dir DIR]
               [--nix-db FILE] [--store-root DIR] [--fetch-derivers] [--max-nar-bytes N]
               [--recheck-seconds N]
      a binary cache for stock Nix on loopback that answers a narinfo only for a path whose
      producing derivation (a .drv in the local Nix database) verifies under the policy, with
      the same verdict and last mile as trace-verify; NarHash, NarSize and References are the
      attested ones, signed with the substituter's own key (DIR/signing-key.sec, made at first
      start, mode 0600; put DIR/signing-key.pub in trusted-public-keys). NARs are streamed
      from the upstream whose narinfo matched, decompressed and hash-checked (served with
      Compression: none); a body that differs is cut off. Realisations (Nix < 2.35) and
      build-trace-v2 entries (Nix >= 2.35) only from the verified world. Anything else is a 404; the reason is kept for status.
      --listen (default 127.0.0.1:37515), --state-dir (default /var/lib/buildtrace-substituter),
      --nix-db (default /nix/var/nix/db/db.sqlite), --store-root: a store kept under another
      root (nix --store DIR); the read bounds of trace-verify apply to every upstream read;
      --max-nar-bytes (default 64 GiB): an upstream narinfo with a larger NarSize is a 404.
      --recheck-seconds (default 10): a verdict, and the traces and narinfos it read, are
      reused for at most N seconds before the traces are read again (0: every request); a
      trace edited or removed upstream is noticed by the first request after that.
      A request waits for one of the 2 verification slots at most --request-timeout-ms: past
      it, a 404 (LIMIT_EXCEEDED, kept for status).
      --fetch-derivers: for a path with no local .drv (a nix copy of a prebuilt closure),
      fetch the .drv closure the cache's Deriver: names (each .drv checked against its own
      store path, the path proven to follow from it), then verify as above; off: a 404.
  trace-verify serve status [--state-dir DIR] [--json]
      upstream caches, policy digest, served and refused counts, the last refusals with path,
      derivation and failure codes.`;

const DEFAULT_STATE_DIR = '/var/lib/buildtrace-substituter';

function printStatus(s: StatusReport, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(s, null, 2)}\n`);
    return;
  }
  const lines = [
    `substituter on ${s.listen ?? '(never started)'} since ${s.startedAt ?? '-'}`,
    `  key:     ${s.publicKey ?? '-'}`,
    `  policy:  ${s.policy ?? '-'} (sha256 ${s.policyDigest ?? '-'})`,
    `  caches:  ${s.caches.join(', ') || '-'}`,
    `  narinfo: ${s.served} served (${s.servedFromWorld} from a verified world), ${s.refused} refused; NARs: ${s.narsServed} served, ${s.narsCutOff} cut off; ${s.verdictsCached} verdicts cached`,
    `  verdicts: ${s.verdictsComputed} computed, ${s.verdictsReused} reused from the cache`,
  ];
  if (s.lastRefusals.length > 0) lines.push('  last refusals:');
  for (const r of s.lastRefusals) lines.push(`    ${r.at} ${r.path}${r.drv ? ` (${r.drv})` : ''}: ${r.codes.join(', ')}: ${r.detail.slice(0, 300)}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

function parseListen(text: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:]+\]|[^:]+):(\d{1,5})$/.exec(text);
  const port = Number(m?.[2]);
  if (!m || port > 65535) throw new BuildtraceError('USAGE', `--listen ${JSON.stringify(text)}: expected HOST:PORT`);
  return { host: (m[1] as string).replace(/^\[|\]$/g, ''), port };
}

export async function serveCommand(rest: string[]): Promise<number> {
  if (rest[0] === 'status') {
    const a = parseArgs(rest.slice(1), { booleans: ['json'], strings: ['state-dir'] });
    if (a.flags.has('help')) {
      process.stdout.write(`${SERVE_HELP}\n`);
      return EXIT_OK;
    }
    printStatus(readStatus(a.values.get('state-dir') ?? DEFAULT_STATE_DIR), a.flags.has('json'));
    return EXIT_OK;
  }
  const a = parseArgs(rest, {
    booleans: ['fetch-derivers'],
    strings: ['policy', 'listen', 'state-dir', 'nix-db', 'store-root', 'max-nar-bytes', 'recheck-seconds', ...LIMIT_FLAGS],
    repeated: ['cache'],
  });
  if (a.flags.has('help')) {
    process.stdout.write(`${SERVE_HELP}\n`);
    return EXIT_OK;
  }
  if (a.positionals.length > 0) throw new BuildtraceError('USAGE', `unexpected argument ${a.positionals[0]}`);
  const policyFile = a.values.get('policy');
  if (!policyFile) throw new BuildtraceError('USAGE', 'serve needs --policy FILE');
  const cacheUrls = a.lists.get('cache') ?? [];
  if (cacheUrls.length === 0) throw new BuildtraceError('USAGE', 'serve needs at least one --cache URL');
  const limits = readLimitsFrom((f) => a.values.get(f));
  const maxNar = a.values.get('max-nar-bytes');
  if (maxNar !== undefined && (!/^\d+$/.test(maxNar) || !Number.isSafeInteger(Number(maxNar)) || Number(maxNar) < 1))
    throw new BuildtraceError('USAGE', `--max-nar-bytes ${JSON.stringify(maxNar)}: expected an integer >= 1`);
  const recheck = a.values.get('recheck-seconds') ?? '10';
  if (!/^\d+$/.test(recheck) || !Number.isSafeInteger(Number(recheck) * 1000))
    throw new BuildtraceError('USAGE', `--recheck-seconds ${JSON.stringify(recheck)}: expected an integer >= 0`);
  // most verifications here are of small closures (one narinfo each): starting the worker
  // pool (measured: about 25 ms a request) costs more than it saves; signatures still verify
  // on libuv's thread pool
  process.env['BUILDTRACE_POOL_MIN'] ??= 'never';
  const { host, port } = parseListen(a.values.get('listen') ?? '127.0.0.1:37515');
  const stateDir = a.values.get('state-dir') ?? DEFAULT_STATE_DIR;
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const root = a.values.get('store-root') ?? '';
  const nixDb = a.values.get('nix-db') ?? `${root}/nix/var/nix/db/db.sqlite`;
  const caches = await Promise.all(cacheUrls.map((u) => openCache(u, { limits })));
  const loader = new DrvLoader('/nix/store', 200_000, root);
  const local = new LocalDerivations(nixDb, loader);
  const { NixDbStoreInfo } = await import('../daemon/store-info.js');
  const store = new NixDbStoreInfo(nixDb);
  const key = loadOrCreateKey(stateDir);
  const state = new StateDb(stateDir);
  const sub = new Substituter({
    policyFile,
    caches,
    limits,
    loader,
    local,
    localFacts: new LocalStoreFacts(store, `local store (${nixDb})`),
    pathInfos: (paths) => store.pathInfos(paths),
    fetched: a.flags.has('fetch-derivers') ? new FetchedDerivations(join(stateDir, 'derivations'), caches, limits.requestTimeoutMs * 4) : undefined,
    state,
    key,
    maxNarBytes: maxNar === undefined ? undefined : Number(maxNar),
    recheckMs: Number(recheck) * 1000,
  });
  const log = (m: string): void => void process.stderr.write(`trace-verify serve: ${m}\n`);
  const server = await startServer(sub, state, { host, port, requestTimeoutMs: limits.requestTimeoutMs, log });
  const addr = server.address();
  const listen = typeof addr === 'object' && addr ? `${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}` : String(addr);
  state.setMeta({
    listen,
    publicKey: formatPublicKey(key.publicKey),
    policy: policyFile,
    policyDigest: sub.currentPolicy().digest,
    caches: JSON.stringify(sub.cacheUrls),
    startedAt: new Date().toISOString(),
  });
  // one line on stdout: scripts and tests read the address and the key from it
  process.stdout.write(`${JSON.stringify({ listen, publicKey: formatPublicKey(key.publicKey) })}\n`);
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      server.close(() => resolve());
      server.closeAllConnections();
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  try {
    local.close();
    store.close();
    state.close();
  } catch (err) {
    log(errorMessage(err));
  }
  // the connections are closed, and what their requests still wait for (a slow upstream's read,
  // up to its deadline) has nobody to answer: a stop is prompt, never held up by an upstream
  process.exit(EXIT_OK);
}
