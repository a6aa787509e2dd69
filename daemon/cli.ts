#!/usr/bin/env -S node --max-semi-space-size=1 --max-old-space-size=128
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { keyAttestationPreimage, reportDataFor } from '../src/tee/binding.js';
import { createTeeProvider, evidenceRecord } from './tee-provider.js';
import { defaultTeeKeyName, generateGuestKey, refuseRemoteBuilders, remoteBuildersProblem } from './tee-mode.js';
import { Publisher, type PublishTarget } from './publisher.js';
import { openCache } from '../src/cache/open.js';
import { redactUrl } from '../src/cache/credentials.js';

import { BuildtraceError, errorMessage, EXIT_OK, EXIT_REJECTED } from '../src/errors.js';
import { formatPublicKey, parseSecretKey } from '../src/nix/nix-key.js';
import { parseArgs } from '../src/util/args.js';
import { runCli } from '../src/util/run-cli.js';
import { callDaemonOk, listenOnSocket } from './api.js';
import { Capturer } from './capture.js';
import { dbFile, DEFAULT_SOCKET, loadConfig, readKeyFile, type DaemonConfig } from './config.js';
import { DrvLoader } from '../src/store/drv-loader.js';
import { TraceService } from './service.js';
import { Spool } from './spool.js';
import { openStoreInfo } from './store-info.js';
import { findTraces } from './show.js';
import { TraceDb } from './trace-db.js';
import { StateLock } from './state-lock.js';
import { BUILDTRACE_VERSION, builderVersions } from './versions.js';
import { formatList, formatShow, formatStatus, type StatusBody } from './format.js';

const HELP = `trace-daemon ${BUILDTRACE_VERSION}: turns every Nix build into one signed build trace

Usage:
  trace-daemon run [--config FILE]          run the daemon in the foreground
  trace-daemon status [--json]              what the daemon is doing
  trace-daemon list [--json] [--limit N]    the most recent traces (default 20)
  trace-daemon show PATH [--json]           traces for a .drv (resolved or not) or an output path
  trace-daemon push [--wait] [--json]       process the spool and publish now; --wait blocks until
                                            the spool and the outbox are empty (exit 1 if a cache failed)
  trace-daemon retry [--cache URL] [--json]   put outbox rows that failed permanently (of one cache, or
                                            all) back in the queue, after fixing the cause
  trace-daemon evidence [--out DIR] [--json] TEE evidence the daemon holds; --out writes report.bin
                                            and preimage.bin per item, and the certificates that came
                                            with the evidence under evidence-certs/ (never roots)

Options:
  --config FILE   daemon configuration (JSON, see schemas/daemon-config.schema.json);
                  default $BUILDTRACE_CONFIG or /etc/buildtrace/config.json
  --socket PATH   control socket; default $BUILDTRACE_SOCKET, the config's "socket", or ${DEFAULT_SOCKET}
  --json          machine-readable output on stdout
  -h, --help      this text

Exit codes: 0 ok, 1 not found, 2 usage or configuration error (or another daemon holds the
stateDir or socket), 3 daemon not running or failing (e.g. its database is unreadable),
70 internal error (a bug: report it).`;

const DEFAULT_CONFIG = '/etc/buildtrace/config.json';

function configPath(values: Map<string, string>): string {
  return values.get('config') ?? process.env['BUILDTRACE_CONFIG'] ?? DEFAULT_CONFIG;
}

function socketPath(values: Map<string, string>): string {
  const explicit = values.get('socket') ?? process.env['BUILDTRACE_SOCKET'];
  if (explicit) return explicit;
  const cfg = values.get('config') ?? process.env['BUILDTRACE_CONFIG'];
  if (cfg) return loadConfig(cfg).socket;
  return DEFAULT_SOCKET;
}

async function run(config: DaemonConfig): Promise<void> {
  const teeMode = config.tee.provider !== 'none';
  if (teeMode) {
    const remote = await remoteBuildersProblem(config.tee.machinesFile);
    if (remote !== undefined) refuseRemoteBuilders(remote);
  }
  const key = teeMode
    ? generateGuestKey(config.tee.keyName ?? defaultTeeKeyName())
    : parseSecretKey(readKeyFile(config.signingKeyFile as string), config.signingKeyFile);
  mkdirSync(config.stateDir, { recursive: true, mode: 0o700 });
  // before anything touches the database: a second daemon on this stateDir stops here
  const lock = StateLock.acquire(config.stateDir);
  const db = new TraceDb(dbFile(config));
  const store = openStoreInfo(config.storeInfo, config.nixDb);
  const spool = new Spool(config.spoolDir, config.storeDir, config.maxRecordBytes);
  const capturer = new Capturer(new DrvLoader(config.storeDir), store, config.storeDir);
  const versions = await builderVersions();
  const warn = (m: string): void => void process.stderr.write(`${m}\n`);
  // caches must be known before evidence is recorded, so it is queued for them
  db.caches = config.caches.map((c) => redactUrl(c.url));
  const tee = createTeeProvider(config.tee, config.stateDir, warn);
  let keyEvidence: { at: string; provider: string; simulated: boolean } | undefined;
  if (tee) {
    // Key attestation: one report per start binding the signing key and a fresh boot nonce.
    const preimage = keyAttestationPreimage(key.publicKey.raw, randomBytes(32));
    const reportData = reportDataFor(preimage);
    const ev = await tee.attest(reportData);
    const rec = evidenceRecord('key', key.publicKey.fingerprint, tee, ev, preimage, reportData);
    db.insertEvidence(rec);
    const collectedAt = rec.collectedAt;
    keyEvidence = { at: collectedAt, provider: tee.name, simulated: ev.simulated };
    warn(
      `trace-daemon: key ${key.name} (${key.publicKey.fingerprint.slice(0, 16)}…, generated in the guest) attested by ${tee.name} (${ev.format})${ev.simulated ? ' — SIMULATED' : ''}`,
    );
  }
  const targets: PublishTarget[] = [];
  for (const c of config.caches)
    targets.push({
      url: redactUrl(c.url),
      backend: await openCache(c.url, { tokenFile: c.tokenFile }),
      uploadOutputs: c.uploadOutputs ?? config.uploadOutputs,
      buildTraceV2: c.buildTraceV2 ?? false,
    });
  const publisher = new Publisher(db, targets, warn, key);
  publisher.backfill();
  const service = new TraceService(spool, capturer, db, key, versions, config.batchSize, warn, config.tee.perTrace ? tee : undefined);
  db.onRecovered = (message) => {
    service.stats.lastError = { at: new Date().toISOString(), message };
    warn(`trace-daemon: ${message}`);
  };

  const server = await listenOnSocket(config.socket, async (url, method) => {
    try {
      db.assertUsable();
      return await api(url, method);
    } catch (err) {
      db.noteError(err);
      throw err;
    }
  });
  async function api(url: URL, method: string): Promise<{ status: number; body: unknown }> {
    switch (`${method} ${url.pathname}`) {
      case 'GET /v1/status': {
        try {
          db.checkFiles();
        } catch (err) {
          service.stats.lastError = { at: new Date().toISOString(), message: errorMessage(err) };
        }
        const body: StatusBody = {
          version: BUILDTRACE_VERSION,
          pid: process.pid,
          ...service.stats,
          // the public half, also for TEE mode's guest-born key (no file to convert): trace-verify key to-pem takes it
          key: {
            name: key.name,
            fingerprint: key.publicKey.fingerprint,
            publicKey: formatPublicKey(key.publicKey),
            sshFingerprint: key.publicKey.sshFingerprint,
          },
          database: { file: db.file, traces: db.count(), lastTraceAt: db.lastCreated() ?? null },
          spool: { dir: spool.dir, pending: spool.list().length, queued: service.pending, rejected: spool.rejectedCount() },
          store: { mode: store.mode, ...(store.mode === 'db' ? { nixDb: config.nixDb } : {}) },
          busy: service.busy,
          caches: publisher.status(),
          tee: { provider: config.tee.provider, perTrace: config.tee.perTrace, keyEvidence: keyEvidence ?? null },
          memory: process.memoryUsage(),
        };
        return { status: 200, body };
      }
      case 'GET /v1/traces': {
        const limit = Math.min(Math.max(Number(url.searchParams.get('limit') ?? 20) || 20, 1), 10000);
        return { status: 200, body: { traces: db.list(limit) } };
      }
      case 'GET /v1/trace': {
        const path = url.searchParams.get('path') ?? '';
        const found = await findTraces(db, capturer, path);
        return found.length === 0 ? { status: 404, body: { error: `no trace for ${path}` } } : { status: 200, body: { traces: found } };
      }
      case 'GET /v1/evidence': {
        const rows = db.evidence();
        return {
          status: 200,
          body: {
            evidence: rows.map((r) => ({
              id: r.id,
              kind: r.kind,
              traceId: r.trace_id,
              keyFingerprint: r.key_fp,
              provider: r.provider,
              format: r.format,
              simulated: r.simulated === 1,
              collectedAt: r.collected_at,
              reportData: r.report_data,
              report: r.report.toString('base64'),
              preimage: r.preimage.toString('base64'),
              certs: JSON.parse(r.certs) as unknown,
            })),
          },
        };
      }
      case 'POST /v1/retry': {
        // caches are known by their URL without user-info (see redactUrl)
        const given = url.searchParams.get('cache');
        const cache = given === null ? undefined : redactUrl(given);
        if (cache !== undefined && !publisher.urls.includes(cache)) {
          return { status: 404, body: { error: `no cache ${cache} in the configuration (caches: ${publisher.urls.join(', ') || 'none'})` } };
        }
        return { status: 200, body: { requeued: publisher.retry(cache) } };
      }
      case 'POST /v1/push': {
        service.retryNow();
        if (url.searchParams.get('wait') !== '1') {
          void publisher.kick(true);
          return {
            status: 200,
            body: { pending: spool.list().length, rejected: spool.rejectedCount(), traces: db.count(), outbox: { pending: publisher.pendingCount() } },
          };
        }
        await service.idle();
        const outbox = await publisher.flush();
        const pending = spool.list().length;
        // why records are still waiting, when batches are failing
        const spoolError = pending > 0 && service.backingOff ? service.stats.lastError?.message : undefined;
        return {
          status: 200,
          body: { pending, ...(spoolError !== undefined ? { spoolError } : {}), rejected: spool.rejectedCount(), traces: db.count(), outbox },
        };
      }
      default:
        return { status: 404, body: { error: `no such endpoint ${method} ${url.pathname}` } };
    }
  }

  service.onCommit = () => void publisher.kick();
  await service.start();
  publisher.start();
  process.stderr.write(
    `trace-daemon ${BUILDTRACE_VERSION}: signing as ${key.name}, spool ${spool.dir}, database ${db.file}, store info via ${store.mode}, socket ${config.socket}\n`,
  );

  let refusal: string | undefined;
  await new Promise<void>((resolve) => {
    const stop = (sig: string): void => {
      process.stderr.write(`trace-daemon: ${sig}, finishing the batch in progress\n`);
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
    // TEE mode: remote builders configured after start-up stop the daemon (the spool keeps the records)
    if (teeMode) {
      const t = setInterval(() => {
        void remoteBuildersProblem(config.tee.machinesFile).then((why) => {
          if (why === undefined || refusal !== undefined) return;
          refusal = why;
          clearInterval(t);
          stop('remote builders configured');
        });
      }, REMOTE_BUILDERS_RECHECK_MS);
      t.unref();
    }
  });
  await service.stop();
  const published = await publisher.stop();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  store.close();
  db.close();
  lock.release();
  process.stderr.write('trace-daemon: stopped\n');
  if (refusal !== undefined) refuseRemoteBuilders(refusal);
  // a request to a cache that does not answer would keep the process alive until its timeout
  if (!published) {
    process.stderr.write('trace-daemon: left unfinished publishing rounds (their rows stay in the outbox)\n', () => process.exit(0));
  }
}

/** How often TEE mode re-reads Nix's builders setting (BUILDTRACE_BUILDERS_RECHECK_MS for tests). */
const REMOTE_BUILDERS_RECHECK_MS = Number(process.env['BUILDTRACE_BUILDERS_RECHECK_MS'] ?? 30_000);

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    process.stdout.write(`${HELP}\n`);
    return cmd === undefined ? 2 : EXIT_OK;
  }
  if (cmd === '--version') {
    process.stdout.write(`${BUILDTRACE_VERSION}\n`);
    return EXIT_OK;
  }
  const args = parseArgs(rest, { booleans: ['json', 'wait'], strings: ['config', 'socket', 'limit', 'out', 'cache'] });
  if (args.flags.has('help')) {
    process.stdout.write(`${HELP}\n`);
    return EXIT_OK;
  }
  const json = args.flags.has('json');
  const out = (body: unknown, human: () => string): void => {
    process.stdout.write(`${json ? JSON.stringify(body, null, 2) : human()}\n`);
  };
  switch (cmd) {
    case 'run':
      if (args.positionals.length > 0) throw new BuildtraceError('USAGE', `run takes no arguments`);
      await run(loadConfig(configPath(args.values)));
      return EXIT_OK;
    case 'status': {
      const r = await callDaemonOk(socketPath(args.values), 'GET', '/v1/status');
      out(r.body, () => formatStatus(r.body as StatusBody));
      return EXIT_OK;
    }
    case 'list': {
      const limit = args.values.get('limit') ?? '20';
      if (!/^[1-9][0-9]*$/.test(limit)) throw new BuildtraceError('USAGE', '--limit must be a positive integer');
      const r = await callDaemonOk(socketPath(args.values), 'GET', `/v1/traces?limit=${limit}`);
      out(r.body, () => formatList(r.body));
      return EXIT_OK;
    }
    case 'show': {
      const [path, extra] = args.positionals;
      if (path === undefined || extra !== undefined) throw new BuildtraceError('USAGE', 'show takes exactly one store path');
      const r = await callDaemonOk(socketPath(args.values), 'GET', `/v1/trace?path=${encodeURIComponent(path)}`, [200, 404]);
      if (r.status === 404) throw new BuildtraceError('NOT_FOUND', `no trace for ${path}`, { subject: path });
      out(r.body, () => formatShow(r.body));
      return EXIT_OK;
    }
    case 'evidence': {
      const r = await callDaemonOk(socketPath(args.values), 'GET', '/v1/evidence');
      const body = r.body as {
        evidence: {
          id: number;
          kind: string;
          provider: string;
          format: string;
          simulated: boolean;
          collectedAt: string;
          keyFingerprint: string;
          traceId: number | null;
          report: string;
          preimage: string;
          certs: { role: string; der: string }[];
        }[];
      };
      const outDir = args.values.get('out');
      if (outDir) {
        for (const e of body.evidence) {
          const d = join(outDir, String(e.id));
          mkdirSync(d, { recursive: true });
          writeFileSync(join(d, e.format === 'tdx' ? 'quote.bin' : 'report.bin'), Buffer.from(e.report, 'base64'));
          writeFileSync(join(d, 'preimage.bin'), Buffer.from(e.preimage, 'base64'));
          // Evidence-supplied certificates go apart (and trace-verify refuses a roots directory
          // holding them or the report): pinning what came with the evidence pins nothing.
          if (e.certs.length > 0) mkdirSync(join(d, 'evidence-certs'), { recursive: true });
          for (const c of e.certs) writeFileSync(join(d, 'evidence-certs', `${c.role}.der`), Buffer.from(c.der, 'base64'));
          const { report: _r, preimage: _p, certs: _c, ...meta } = e;
          writeFileSync(join(d, 'evidence.json'), `${JSON.stringify(meta, null, 2)}\n`);
        }
      }
      out({ evidence: body.evidence.map(({ report: _r, preimage: _p, certs, ...m }) => ({ ...m, certs: certs.map((c) => c.role) })) }, () =>
        body.evidence.length === 0
          ? 'no TEE evidence (tee.provider is "none")'
          : body.evidence
              .map(
                (e) =>
                  `${e.id}: ${e.kind} attestation by ${e.provider} (${e.format})${e.simulated ? ' SIMULATED' : ''} at ${e.collectedAt}${e.traceId !== null ? ` for trace ${e.traceId}` : ''}${outDir ? ` -> ${join(outDir, String(e.id))}` : ''}`,
              )
              .join('\n'),
      );
      return EXIT_OK;
    }
    case 'push': {
      const r = await callDaemonOk(socketPath(args.values), 'POST', `/v1/push${args.flags.has('wait') ? '?wait=1' : ''}`);
      const b = r.body as {
        pending: number;
        spoolError?: string;
        rejected: number;
        traces: number;
        outbox: { pending: number; failed?: number; errors?: { cache: string; error: string }[] };
      };
      if (b.spoolError !== undefined) process.stderr.write(`trace-daemon: ${b.pending} records wait in the spool: ${b.spoolError}\n`);
      out(r.body, () =>
        [
          `${b.traces} traces; ${b.pending} records pending in the spool; ${b.rejected} rejected`,
          `outbox: ${b.outbox.pending} pending${b.outbox.failed !== undefined ? `, ${b.outbox.failed} failed permanently` : ''}`,
          ...(b.outbox.errors ?? []).map((e) => `  ${e.cache}: ${e.error}`),
        ].join('\n'),
      );
      // --wait promises everything reached every cache
      return args.flags.has('wait') && (b.outbox.pending > 0 || (b.outbox.failed ?? 0) > 0 || b.pending > 0) ? EXIT_REJECTED : EXIT_OK;
    }
    case 'retry': {
      if (args.positionals.length > 0) throw new BuildtraceError('USAGE', 'retry takes no arguments (--cache URL names one cache)');
      const cache = args.values.get('cache');
      const r = await callDaemonOk(socketPath(args.values), 'POST', `/v1/retry${cache !== undefined ? `?cache=${encodeURIComponent(cache)}` : ''}`, [200, 404]);
      if (r.status === 404) throw new BuildtraceError('NOT_FOUND', (r.body as { error: string }).error, { subject: cache ?? '' });
      const b = r.body as { requeued: number };
      out(r.body, () => `${b.requeued} failed outbox rows queued again${cache !== undefined ? ` for ${cache}` : ''}`);
      return EXIT_OK;
    }
    default:
      throw new BuildtraceError('USAGE', `unknown command ${JSON.stringify(cmd)}; see trace-daemon --help`);
  }
}

runCli('trace-daemon', main);
