#!/usr/bin/env -S node --max-semi-space-size=1 --max-old-space-size=128
import { mkdirSync } from 'node:fs';
import { BuildtraceError, errorMessage, exitCodeFor, EXIT_OK } from '../src/errors.js';
import { parseSecretKey } from '../src/nix/nix-key.js';
import { parseArgs } from '../src/util/args.js';
import { callDaemon, listenOnSocket } from './api.js';
import { Capturer } from './capture.js';
import { dbFile, DEFAULT_SOCKET, loadConfig, readKeyFile, type DaemonConfig } from './config.js';
import { DrvLoader } from './drv-loader.js';
import { TraceService } from './service.js';
import { Spool } from './spool.js';
import { openStoreInfo } from './store-info.js';
import { TraceDb } from './trace-db.js';
import { BUILDTRACE_VERSION, builderVersions } from './versions.js';
import { formatList, formatShow, formatStatus, type StatusBody } from './format.js';

const HELP = `trace-daemon ${BUILDTRACE_VERSION}: turns every Nix build into one signed build trace

Usage:
  trace-daemon run [--config FILE]          run the daemon in the foreground
  trace-daemon status [--json]              what the daemon is doing
  trace-daemon list [--json] [--limit N]    the most recent traces (default 20)
  trace-daemon show PATH [--json]           traces for a .drv (resolved or not) or an output path
  trace-daemon push [--wait] [--json]       process the spool now; --wait blocks until it is empty

Options:
  --config FILE   daemon configuration (JSON, see schemas/daemon-config.schema.json);
                  default $BUILDTRACE_CONFIG or /etc/buildtrace/config.json
  --socket PATH   control socket; default $BUILDTRACE_SOCKET, the config's "socket", or ${DEFAULT_SOCKET}
  --json          machine-readable output on stdout
  -h, --help      this text

Exit codes: 0 ok, 1 not found, 2 usage or configuration error, 3 daemon not running.`;

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
  const key = parseSecretKey(readKeyFile(config.signingKeyFile), config.signingKeyFile);
  mkdirSync(config.stateDir, { recursive: true, mode: 0o700 });
  const db = new TraceDb(dbFile(config));
  const store = openStoreInfo(config.storeInfo, config.nixDb);
  const spool = new Spool(config.spoolDir, config.storeDir, config.maxRecordBytes);
  const capturer = new Capturer(new DrvLoader(config.storeDir), store, config.storeDir);
  const versions = await builderVersions();
  const service = new TraceService(spool, capturer, store, db, key, versions, config.batchSize);

  const server = await listenOnSocket(config.socket, async (url, method) => {
    switch (`${method} ${url.pathname}`) {
      case 'GET /v1/status': {
        const body: StatusBody = {
          version: BUILDTRACE_VERSION,
          pid: process.pid,
          ...service.stats,
          key: { name: key.name, fingerprint: key.publicKey.fingerprint },
          database: { file: db.file, traces: db.count(), lastTraceAt: db.lastCreated() ?? null },
          spool: { dir: spool.dir, pending: spool.list().length, queued: service.pending, rejected: spool.rejectedCount() },
          store: { mode: store.mode, ...(store.mode === 'db' ? { nixDb: config.nixDb } : {}) },
          busy: service.busy,
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
        const found = db.find(path);
        return found.length === 0 ? { status: 404, body: { error: `no trace for ${path}` } } : { status: 200, body: { traces: found } };
      }
      case 'POST /v1/push': {
        service.scan();
        if (url.searchParams.get('wait') === '1') await service.idle();
        return { status: 200, body: { pending: spool.list().length, rejected: spool.rejectedCount(), traces: db.count() } };
      }
      default:
        return { status: 404, body: { error: `no such endpoint ${method} ${url.pathname}` } };
    }
  });

  await service.start();
  process.stderr.write(
    `trace-daemon ${BUILDTRACE_VERSION}: signing as ${key.name}, spool ${spool.dir}, database ${db.file}, store info via ${store.mode}, socket ${config.socket}\n`,
  );

  await new Promise<void>((resolve) => {
    const stop = (sig: string): void => {
      process.stderr.write(`trace-daemon: ${sig}, finishing the batch in progress\n`);
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  await service.stop();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  store.close();
  db.close();
  process.stderr.write('trace-daemon: stopped\n');
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    process.stdout.write(HELP + '\n');
    return cmd === undefined ? 2 : EXIT_OK;
  }
  if (cmd === '--version') {
    process.stdout.write(BUILDTRACE_VERSION + '\n');
    return EXIT_OK;
  }
  const args = parseArgs(rest, { booleans: ['json', 'wait'], strings: ['config', 'socket', 'limit'] });
  if (args.flags.has('help')) {
    process.stdout.write(HELP + '\n');
    return EXIT_OK;
  }
  const json = args.flags.has('json');
  const out = (body: unknown, human: () => string): void => {
    process.stdout.write((json ? JSON.stringify(body, null, 2) : human()) + '\n');
  };
  switch (cmd) {
    case 'run':
      if (args.positionals.length > 0) throw new BuildtraceError('USAGE', `run takes no arguments`);
      await run(loadConfig(configPath(args.values)));
      return EXIT_OK;
    case 'status': {
      const r = await callDaemon(socketPath(args.values), 'GET', '/v1/status');
      out(r.body, () => formatStatus(r.body as StatusBody));
      return EXIT_OK;
    }
    case 'list': {
      const limit = args.values.get('limit') ?? '20';
      if (!/^[1-9][0-9]*$/.test(limit)) throw new BuildtraceError('USAGE', '--limit must be a positive integer');
      const r = await callDaemon(socketPath(args.values), 'GET', `/v1/traces?limit=${limit}`);
      out(r.body, () => formatList(r.body));
      return EXIT_OK;
    }
    case 'show': {
      const [path, extra] = args.positionals;
      if (path === undefined || extra !== undefined) throw new BuildtraceError('USAGE', 'show takes exactly one store path');
      const r = await callDaemon(socketPath(args.values), 'GET', `/v1/trace?path=${encodeURIComponent(path)}`);
      if (r.status === 404) throw new BuildtraceError('NOT_FOUND', `no trace for ${path}`, { subject: path });
      out(r.body, () => formatShow(r.body));
      return EXIT_OK;
    }
    case 'push': {
      const r = await callDaemon(socketPath(args.values), 'POST', `/v1/push${args.flags.has('wait') ? '?wait=1' : ''}`);
      out(r.body, () => {
        const b = r.body as { pending: number; rejected: number; traces: number };
        return `${b.traces} traces; ${b.pending} records pending in the spool; ${b.rejected} rejected`;
      });
      return EXIT_OK;
    }
    default:
      throw new BuildtraceError('USAGE', `unknown command ${JSON.stringify(cmd)}; see trace-daemon --help`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`trace-daemon: ${errorMessage(err)}\n`);
    process.exitCode = exitCodeFor(err);
  },
);
