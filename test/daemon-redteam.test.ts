// ci: nix (runs on every Nix: the host and the trixie and sid chroots; see scripts/run-tests.sh)
/**
 * The daemon against the red-team list of issue #11: hostile files where it reads, its
 * database deleted under it, a full disk, a socket path that is a file, a second daemon,
 * a slow cache beside a fast one, a permanent publishing failure, a corrupt database.
 * Each test checks that nothing is lost, nothing is duplicated and `status` keeps answering.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  closeSync,
  unlinkSync,
  watch,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { readKeyFile } from '../daemon/config.js';
import { BuildtraceError } from '../src/errors.js';
import { nix32Encode } from '../src/nix/nix32.js';
import { DrvLoader } from '../src/store/drv-loader.js';
import {
  DAEMON_CLI,
  FIXTURES,
  must,
  nixBuildWithHook,
  nixEnv,
  nixKeyPair,
  run,
  salt,
  sha256HexOf,
  startDaemon,
  tempDir,
  waitFor,
  type DaemonHandle,
} from './helpers.js';

interface Status {
  pid: number;
  traced: number;
  rejected: number;
  transientErrors: number;
  lastError?: { message: string };
  database: { traces: number };
  spool: { pending: number };
  caches: { url: string; pending: number; failed: number; done: number; lastError: { message: string } | null }[];
}

async function status(d: DaemonHandle): Promise<Status> {
  const r = await d.cli(['status', '--json']);
  assert.equal(r.code, 0, `status: ${r.stderr}`);
  return JSON.parse(r.stdout) as Status;
}

function dbRows(dbFile: string): { rdrv_path: string; rdrv_hash: string }[] {
  const db = new Database(dbFile, { readonly: true, fileMustExist: true });
  try {
    return db.prepare('SELECT rdrv_path, rdrv_hash FROM traces').all() as { rdrv_path: string; rdrv_hash: string }[];
  } finally {
    db.close();
  }
}

function countOr0(dbFile: string): number {
  try {
    return dbRows(dbFile).length;
  } catch {
    return 0;
  }
}

function spoolRecords(spool: string): string[] {
  return readdirSync(spool).filter((n) => n.endsWith('.json'));
}

/** `n` fresh trivial derivations: the .drv paths and the nix-build arguments. */
async function many(n: number, prefix: string): Promise<{ drvs: string[]; args: string[] }> {
  const args = [join(FIXTURES, 'many.nix'), '--argstr', 'salt', salt(), '--arg', 'n', String(n), '--argstr', 'prefix', prefix];
  const drvs = (await must('nix-instantiate', args, { env: nixEnv() })).stdout.trim().split('\n');
  assert.equal(drvs.length, n);
  return { drvs, args };
}

/** A store path name that no derivation has: for planting FIFOs and devices under. */
function fakeStorePath(name: string): string {
  return `/nix/store/${nix32Encode(Buffer.from(sha256HexOf(name + salt()), 'hex').subarray(0, 20))}-${name}`;
}

/** Times one status call: it must answer while the daemon deals with the rest. */
// A blocked daemon never answers; a busy CI machine (a fresh node process per call) can take
// a few seconds. 10 s tells the two apart without failing on load.
const STATUS_DEADLINE_MS = 10_000;

async function statusAnswersWithin(d: DaemonHandle, ms: number): Promise<void> {
  const t0 = Date.now();
  await status(d);
  assert.ok(Date.now() - t0 < ms, `status answered in ${Date.now() - t0} ms`);
}

describe('reading files that are not what their names say', () => {
  test('a FIFO or a character device named as a .drv is refused without blocking or reading it', { timeout: 120_000 }, async () => {
    const fifo = fakeStorePath('fifo.drv');
    const dev = fakeStorePath('zero.drv');
    await must('mkfifo', [fifo]);
    await must('mknod', [dev, 'c', '1', '5']); // /dev/zero
    try {
      const loader = new DrvLoader();
      for (const [p, what] of [
        [fifo, /not a regular file \(a FIFO\)/],
        [dev, /not a regular file \(a character device\)/],
      ] as const) {
        assert.throws(
          () => loader.load(p),
          (e: unknown) => e instanceof BuildtraceError && e.code === 'DERIVATION_INVALID' && what.test(e.message),
        );
      }
      // and through the daemon: both records rejected with their reason, a good one traced, status answering
      const d = await startDaemon();
      try {
        const { drvs, args } = await many(3, 'devdrv');
        writeFileSync(join(d.spool, 'fifo.json'), JSON.stringify({ v: 1, drv: fifo, outs: [] }));
        writeFileSync(join(d.spool, 'dev.json'), JSON.stringify({ v: 1, drv: dev, outs: [] }));
        // and a spool record that is itself a FIFO
        await must('mkfifo', [join(d.spool, 'fifo-record.json')]);
        const b = await nixBuildWithHook(d.spool, args);
        assert.equal(b.code, 0, b.stderr);
        await statusAnswersWithin(d, STATUS_DEADLINE_MS);
        const p = await d.cli(['push', '--wait']);
        assert.equal(p.code, 0, p.stderr + p.stdout);
        const reason = (n: string): string => readFileSync(join(d.spool, 'rejected', `${n}.reason`), 'utf8');
        assert.match(reason('fifo.json'), /FIFO/);
        assert.match(reason('dev.json'), /character device/);
        assert.match(reason('fifo-record.json'), /not a regular file \(a FIFO\)/);
        const st = await status(d);
        assert.equal(st.rejected, 3);
        assert.equal(st.database.traces, drvs.length);
        assert.deepEqual(spoolRecords(d.spool), []);
      } finally {
        assert.equal(await d.stop(), 0);
      }
    } finally {
      unlinkSync(fifo);
      unlinkSync(dev);
    }
  });

  test('key files (and the config): a FIFO or a device is refused at once; any group or other read/write bit is refused', async () => {
    const dir = tempDir();
    const k = await nixKeyPair(dir, 'keyperm-1');
    const text = readFileSync(k.secretFile, 'utf8');
    for (const mode of [0o600, 0o400]) {
      chmodSync(k.secretFile, mode);
      assert.equal(readKeyFile(k.secretFile), text, `mode ${mode.toString(8)} accepted`);
    }
    for (const [mode, why] of [
      [0o602, /writable by every user/],
      [0o604, /readable by every user/],
      [0o620, /writable by its group/],
      [0o640, /readable by its group/],
    ] as const) {
      chmodSync(k.secretFile, mode);
      assert.throws(
        () => readKeyFile(k.secretFile),
        (e: unknown) => e instanceof BuildtraceError && e.code === 'KEY_INVALID' && why.test(e.message),
        `mode ${mode.toString(8)}`,
      );
    }
    chmodSync(k.secretFile, 0o600);
    // owned by another user (who could chmod or replace it): refused; root's or our own: accepted
    chownSync(k.secretFile, 12345, 0);
    assert.throws(
      () => readKeyFile(k.secretFile),
      (e: unknown) => e instanceof BuildtraceError && e.code === 'KEY_INVALID' && /owned by uid 12345, not by the daemon's user/.test(e.message),
    );
    chownSync(k.secretFile, process.getuid?.() ?? 0, 0);
    assert.equal(readKeyFile(k.secretFile), text);
    const fifo = join(dir, 'fifo.sec');
    await must('mkfifo', ['-m', '600', fifo]);
    assert.throws(() => readKeyFile(fifo), /not a regular file \(a FIFO\)/);
    assert.throws(() => readKeyFile('/dev/zero'), /not a regular file \(a character device\)/);
    // the daemon itself: exit 2 at once, with the reason
    const cfg = join(dir, 'c.json');
    for (const keyFile of [fifo, '/dev/zero']) {
      writeFileSync(cfg, JSON.stringify({ signingKeyFile: keyFile, spoolDir: join(dir, 's'), stateDir: join(dir, 'st'), socket: join(dir, 'sock') }));
      const t0 = Date.now();
      const r = await run(DAEMON_CLI, ['run', '--config', cfg]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /not a regular file/);
      assert.ok(Date.now() - t0 < 10_000);
    }
    // nor does a config that is a FIFO hang the start
    const cfgFifo = join(dir, 'c.fifo');
    await must('mkfifo', [cfgFifo]);
    const rc = await run(DAEMON_CLI, ['run', '--config', cfgFifo]);
    assert.equal(rc.code, 2, rc.stderr);
    assert.match(rc.stderr, /config .* is not a regular file \(a FIFO\)/);
  });
});

describe('the database deleted while the daemon runs', () => {
  test('110 builds, buildtrace.db* deleted midway: every trace is there after a restart, none twice', { timeout: 600_000 }, async () => {
    const d = await startDaemon({ batchSize: 8 });
    const { drvs, args } = await many(110, 'dbgone');
    const build = nixBuildWithHook(d.spool, args);
    await waitFor(() => countOr0(d.dbFile) >= 16, 180_000, 'first traces');
    for (const n of readdirSync(join(d.dir, 'state'))) if (n.startsWith('buildtrace.db')) unlinkSync(join(d.dir, 'state', n));
    const b = await build;
    assert.equal(b.code, 0, b.stderr);
    await statusAnswersWithin(d, STATUS_DEADLINE_MS);
    const p = await d.cli(['push', '--wait']);
    assert.equal(p.code, 0, p.stderr + p.stdout);
    assert.match(d.stderr(), /buildtrace\.db was deleted while the daemon ran; wrote its contents back and reopened it/);
    const st = await status(d);
    assert.equal(st.database.traces, 110, 'the running daemon sees them all');
    assert.equal(await d.stop(), 0);
    await d.restart();
    const rows = dbRows(d.dbFile).filter((r) => drvs.includes(r.rdrv_path));
    assert.equal(rows.length, 110, 'one trace per build, in the file, after a restart');
    assert.equal(new Set(rows.map((r) => r.rdrv_hash)).size, 110, 'no duplicate');
    assert.deepEqual(spoolRecords(d.spool), []);
    assert.deepEqual(readdirSync(join(d.spool, 'rejected')), []);
    assert.equal((await status(d)).database.traces, 110);
    assert.equal(await d.stop(), 0);
  });

  test('a database put in its place is used; the previous contents are kept beside it', { timeout: 300_000 }, async () => {
    const d = await startDaemon();
    try {
      const first = await many(3, 'dbswap-a');
      assert.equal((await nixBuildWithHook(d.spool, first.args)).code, 0);
      assert.equal((await d.cli(['push', '--wait'])).code, 0);
      // another (empty) database appears at the path
      for (const n of readdirSync(join(d.dir, 'state'))) if (n.startsWith('buildtrace.db')) unlinkSync(join(d.dir, 'state', n));
      new Database(d.dbFile).close();
      const second = await many(2, 'dbswap-b');
      assert.equal((await nixBuildWithHook(d.spool, second.args)).code, 0);
      assert.equal((await d.cli(['push', '--wait'])).code, 0);
      assert.match(d.stderr(), /was replaced by another file while the daemon ran; now using that file, the previous contents are in /);
      assert.equal(dbRows(d.dbFile).length, 2, 'the new file has the new traces');
      const saved = readdirSync(join(d.dir, 'state')).filter((n) => n.startsWith('buildtrace.db.saved-'));
      assert.equal(saved.length, 1);
      assert.equal(dbRows(join(d.dir, 'state', saved[0] as string)).length, 3, 'the old traces are kept');
    } finally {
      assert.equal(await d.stop(), 0);
    }
  });
});

describe('trace-daemon on a full disk', () => {
  test('one retry chain with backoff and one log line while the disk is full; nothing lost', { timeout: 300_000 }, async (t) => {
    const state = tempDir('full-disk-rt-');
    const m = await run('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', state]);
    if (m.code !== 0) {
      t.skip(`cannot mount a small tmpfs here: ${m.stderr.trim()}`);
      return;
    }
    const d = await startDaemon({ extraConfig: { stateDir: state } });
    try {
      const filler = join(state, 'filler');
      await run('dd', ['if=/dev/zero', `of=${filler}`, 'bs=64k']);
      await run('dd', ['if=/dev/zero', `of=${filler}-2`, 'bs=1k']);
      const { args } = await many(20, 'fulldisk-rt');
      assert.equal((await nixBuildWithHook(d.spool, args)).code, 0);
      await waitFor(async () => (await status(d)).transientErrors > 0, 30_000, 'the first failed batch');
      const t0 = Date.now();
      const before = (await status(d)).transientErrors;
      // across a 30 s rescan (and more spool events): the attempts follow one backoff
      for (let i = 0; i < 5; i++) writeFileSync(join(d.spool, `late-${i}.json`), readFileSync(join(d.spool, spoolRecords(d.spool)[0] as string)));
      await new Promise((r) => setTimeout(r, 40_000));
      const st = await status(d);
      const attempts = st.transientErrors - before;
      t.diagnostic(`${attempts} failed attempts in ${Math.round((Date.now() - t0) / 1000)} s`);
      // 1, 2, 4, 8, 16 s: at most 6 in 40 s for one chain; two chains would double it
      assert.ok(attempts >= 2 && attempts <= 6, `${attempts} attempts in 40 s`);
      assert.match(st.lastError?.message ?? '', /full|SQLITE_FULL|ENOSPC/i);
      assert.equal(d.stderr().match(/left in the spool/g)?.length, 1, 'one log line for the failing state');
      assert.equal(spoolRecords(d.spool).length, 25, 'nothing consumed, nothing lost');
      await statusAnswersWithin(d, STATUS_DEADLINE_MS);
      unlinkSync(filler);
      unlinkSync(`${filler}-2`);
      const p = await d.cli(['push', '--wait']);
      assert.equal(p.code, 0, p.stdout + p.stderr);
      assert.equal((await status(d)).database.traces, 20);
      assert.equal(spoolRecords(d.spool).length, 0);
      assert.match(d.stderr(), /batches commit again/);
    } finally {
      await d.stop();
      await run('umount', [state]);
    }
  });
});

describe('the socket and the stateDir belong to one daemon', () => {
  test('a regular file at the socket path is refused and left alone', async () => {
    const dir = tempDir();
    const k = await nixKeyPair(dir, 'sockfile-1');
    const sock = join(dir, 'not-a-socket');
    writeFileSync(sock, 'precious\n');
    const cfg = join(dir, 'c.json');
    writeFileSync(cfg, JSON.stringify({ signingKeyFile: k.secretFile, spoolDir: join(dir, 's'), stateDir: join(dir, 'st'), socket: sock }));
    const r = await run(DAEMON_CLI, ['run', '--config', cfg]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /exists and is not a socket; refusing to remove it/);
    assert.equal(readFileSync(sock, 'utf8'), 'precious\n');
  });

  test('the socket appears with its final mode (0660) even under umask 000, and is removed at exit', { timeout: 120_000 }, async () => {
    const dir = tempDir('sockmode-');
    const seen: number[] = [];
    const watcher = watch(dir, (_e, name) => {
      if (name !== 'daemon.sock') return;
      try {
        seen.push(lstatSync(join(dir, 'daemon.sock')).mode & 0o777);
      } catch {
        // gone again
      }
    });
    const old = process.umask(0);
    let d: DaemonHandle | undefined;
    try {
      d = await startDaemon({ dir });
    } finally {
      process.umask(old);
    }
    try {
      assert.equal(lstatSync(d.socket).mode & 0o777, 0o660);
      assert.ok(
        seen.every((m) => m === 0o660),
        `modes seen: ${seen.map((m) => m.toString(8)).join()}`,
      );
      assert.deepEqual(
        readdirSync(dir).filter((n) => n.startsWith('.trace-daemon-sock-')),
        [],
        'no temporary directory left',
      );
      await statusAnswersWithin(d, STATUS_DEADLINE_MS);
    } finally {
      watcher.close();
      assert.equal(await d.stop(), 0);
    }
    assert.ok(!existsSync(d.socket), 'the socket is removed at exit');
  });

  test('a second daemon on the same stateDir, or on a live socket, exits 2; a stale socket is replaced', { timeout: 120_000 }, async () => {
    const d = await startDaemon();
    try {
      const cfg = JSON.parse(readFileSync(d.config, 'utf8')) as Record<string, unknown>;
      const other = join(d.dir, 'second.json');
      writeFileSync(other, JSON.stringify({ ...cfg, socket: join(d.dir, 'second.sock') }));
      const r = await run(DAEMON_CLI, ['run', '--config', other]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, new RegExp(`another trace-daemon \\(pid ${d.child.pid}\\) is using stateDir`));
      assert.ok(!existsSync(join(d.dir, 'second.sock')));
      writeFileSync(other, JSON.stringify({ ...cfg, stateDir: join(d.dir, 'state2') }));
      const r2 = await run(DAEMON_CLI, ['run', '--config', other]);
      assert.equal(r2.code, 2, r2.stderr);
      assert.match(r2.stderr, /already listening on/);
      await statusAnswersWithin(d, STATUS_DEADLINE_MS);
      // kill -9 leaves the socket and the lock file: a new daemon takes both
      await d.kill9();
      assert.ok(existsSync(d.socket));
      await d.restart();
      assert.equal((await status(d)).pid, d.child.pid);
    } finally {
      assert.equal(await d.stop(), 0);
    }
  });
});

/** A cache server for the tests: PUT/GET with ETags and preconditions, and switchable misbehaviour. */
class TestCache {
  readonly objects = new Map<string, Buffer>();
  mode: 'ok' | 'stall' | 'forbidden' | 'skewed' = 'ok';
  /** requests received (answered or not) */
  requests = 0;
  /** Answers a GET itself when it returns true (a hostile cache's objects). */
  serve: ((key: string, res: ServerResponse) => boolean) | undefined;
  /** Keys written (PUT accepted), in order. */
  readonly written: string[] = [];
  private readonly server: Server;
  private version = 0;
  private readonly etags = new Map<string, string>();
  constructor() {
    this.server = createServer((req, res) => this.handle(req, res));
  }
  async listen(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/cache`;
  }
  dropConnections(): void {
    this.server.closeAllConnections();
  }
  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
  lines(): string[] {
    return [...this.objects].filter(([k]) => k.includes('/traces/')).flatMap(([, v]) => v.toString('utf8').split('\n').filter(Boolean));
  }
  private handle(req: IncomingMessage, res: ServerResponse): void {
    this.requests++;
    if (this.mode === 'stall') return; // never answers
    const key = req.url ?? '';
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method === 'GET') {
        if (this.serve?.(key, res)) return;
        const v = this.objects.get(key);
        if (!v) return void res.writeHead(404).end();
        res.writeHead(200, { etag: this.etags.get(key) ?? '' }).end(v);
        return;
      }
      if (this.mode === 'forbidden') return void res.writeHead(403).end('AccessDenied');
      if (this.mode === 'skewed') return void res.writeHead(403).end('<Error><Code>RequestTimeTooSkewed</Code></Error>');
      const cur = this.etags.get(key);
      const ifMatch = req.headers['if-match'];
      if ((req.headers['if-none-match'] === '*' && cur !== undefined) || (ifMatch !== undefined && ifMatch !== cur)) return void res.writeHead(412).end();
      this.objects.set(key, Buffer.concat(chunks));
      this.written.push(key);
      this.etags.set(key, `"${++this.version}"`);
      res.writeHead(201).end();
    });
  }
}

describe('publishing: caches are independent, failed rows can be requeued', () => {
  test('a cache serving a cap-sized traces/ object, a huge .doi and a null .doi: the daemon lives, the rest is published, the objects are reported', {
    timeout: 300_000,
  }, async () => {
    const hostile = new TestCache();
    // 63 MiB of short bundle-like lines, just under the readers' 64 MiB object bound
    const line = Buffer.from('{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}\n');
    const cap = Buffer.alloc(63 << 20);
    for (let o = 0; o + line.length <= cap.length; o += line.length) line.copy(cap, o);
    const mib = Buffer.alloc(1 << 20, 0x20);
    let hugeTraceKey: string | undefined;
    hostile.serve = (key, res) => {
      if (key.includes('/traces/') && !key.endsWith('.jsonl')) {
        hugeTraceKey ??= key; // the first trace object asked for stays cap-sized
        if (key !== hugeTraceKey) return false;
        res.writeHead(200, { etag: '"huge"' }); // no Content-Length: the reader must cut it off
        res.end(cap);
        return true;
      }
      if (/-ca-1\.drv\/out\.doi$/.test(key)) {
        res.writeHead(200, { etag: '"null"' }).end('null');
        return true;
      }
      if (/-ca-2\.drv\/out\.doi$/.test(key)) {
        res.writeHead(200, { etag: '"big"' });
        let sent = 0;
        const more = (): void => {
          while (sent < 100 && !res.destroyed) {
            sent++;
            if (!res.write(mib)) return void res.once('drain', more);
          }
          res.end();
        };
        more();
        return true;
      }
      return false;
    };
    const url = await hostile.listen();
    const fileDir = tempDir('good-cache-');
    const fileUrl = `file://${fileDir}`;
    const d = await startDaemon({
      extraConfig: {
        caches: [
          { url, buildTraceV2: true },
          { url: fileUrl, buildTraceV2: true },
        ],
      },
    });
    try {
      const pid = d.child.pid;
      const s = salt();
      const fodHash = (await import('node:crypto')).createHash('sha256').update(`fixed-${s}\n`).digest('hex');
      const b = await nixBuildWithHook(d.spool, [join(FIXTURES, 'scope.nix'), '--argstr', 'salt', s, '--argstr', 'fodHash', fodHash, '-A', 'ca3', '-A', 'ia1']);
      assert.equal(b.code, 0, b.stderr);
      const p = await d.cli(['push', '--wait']);
      assert.equal(p.code, 1, 'objects that cannot be written make push --wait exit 1');
      assert.match(p.stdout + p.stderr, /not a build-trace-v2 entry|maxObjectBytes|exceeded/);
      // alive, same process
      assert.equal(d.child.exitCode, null, d.stderr());
      let st = await status(d);
      assert.equal(st.pid, pid);
      assert.equal(st.database.traces, 4, 'ca-1, ca-2, ca-3, ia-1');
      // the file:// cache has everything: 4 trace objects, 3 .doi entries
      assert.equal(readdirSync(join(fileDir, 'traces')).length, 4);
      assert.equal(readdirSync(join(fileDir, 'build-trace-v2')).length, 3);
      assert.equal(st.caches.find((c) => c.url === fileUrl)?.done, 4);
      // the hostile cache: the three other trace objects and ca-3's .doi were written; only the bad objects are held up
      const tracesWritten = new Set(hostile.written.filter((k) => k.includes('/traces/')));
      assert.equal(tracesWritten.size, 3, [...tracesWritten].join());
      assert.ok(hugeTraceKey && !tracesWritten.has(hugeTraceKey));
      assert.ok(
        hostile.written.some((k) => /-ca-3\.drv\/out\.doi$/.test(k)),
        'the null .doi held up only its own entry',
      );
      assert.ok(!hostile.written.some((k) => /-ca-[12]\.drv\/out\.doi$/.test(k)));
      const h = st.caches.find((c) => c.url === url) as Status['caches'][number] & { failingObjects: { key: string; message: string }[] };
      const objects = new Map(h.failingObjects.map((o) => [o.key, o.message]));
      assert.equal(objects.size, 3, JSON.stringify(h.failingObjects));
      assert.match(objects.get((hugeTraceKey ?? '').replace(/^\/cache\//, '')) ?? '', /LIMIT_EXCEEDED|limit maxObjectBytes \(8388608\) exceeded/);
      const doi = [...objects].filter(([k]) => k.endsWith('.doi'));
      assert.match(doi.find(([k]) => /-ca-1\.drv/.test(k))?.[1] ?? '', /not a build-trace-v2 entry/);
      assert.match(doi.find(([k]) => /-ca-2\.drv/.test(k))?.[1] ?? '', /limit maxObjectBytes \(1048576\) exceeded/);
      // held up: ca-1 and ca-2 (their .doi entries) and whichever build owns the cap-sized trace
      // object (the first one the publisher happened to ask for); every other row is done
      const db = new Database(d.dbFile, { readonly: true, fileMustExist: true });
      const owners = db.prepare('SELECT rdrv_hash, drv_name FROM traces').all() as { rdrv_hash: string; drv_name: string }[];
      db.close();
      const hugeOwner = owners.find((o) => hugeTraceKey?.endsWith(`/traces/${o.rdrv_hash}`))?.drv_name;
      assert.ok(hugeOwner, `the cap-sized object ${hugeTraceKey} belongs to one of ${JSON.stringify(owners)}`);
      const held = new Set(owners.filter((o) => /ca-[12]$/.test(o.drv_name) || o.drv_name === hugeOwner).map((o) => o.drv_name));
      assert.equal(h.done, owners.length - held.size, `done on the hostile cache: all but ${[...held].join(', ')}`);
      const human = await d.cli(['status']);
      assert.match(human.stdout, /object build-trace-v2\/.*-ca-1\.drv\/out\.doi failing/);
      // it keeps tracing and publishing
      const { drvs, args } = await many(2, 'afterhostile');
      assert.equal((await nixBuildWithHook(d.spool, args)).code, 0);
      await waitFor(
        async () => (await status(d)).caches.find((c) => c.url === fileUrl)?.done === 4 + drvs.length,
        30_000,
        'the new traces on the file:// cache',
      );
      await waitFor(
        async () => new Set(hostile.written.filter((k) => k.includes('/traces/'))).size === 3 + drvs.length,
        30_000,
        'the new traces on the hostile cache',
      );
      st = await status(d);
      assert.equal(st.pid, pid);
      assert.equal(d.child.exitCode, null);
    } finally {
      assert.equal(await d.stop(), 0);
      await hostile.close();
    }
  });

  test('a cache that never answers does not hold up a file:// cache', { timeout: 300_000 }, async (t) => {
    const slow = new TestCache();
    slow.mode = 'stall';
    const slowUrl = await slow.listen();
    const fastDir = tempDir('fast-cache-');
    const fastUrl = `file://${fastDir}`;
    const d = await startDaemon({ extraConfig: { caches: [{ url: slowUrl }, { url: fastUrl }] } });
    try {
      const { drvs, args } = await many(6, 'slowfast');
      const t0 = Date.now();
      assert.equal((await nixBuildWithHook(d.spool, args)).code, 0);
      await waitFor(
        async () => {
          const c = (await status(d)).caches.find((x) => x.url === fastUrl);
          return (c?.done ?? 0) >= drvs.length;
        },
        25_000,
        'the fast cache to have every trace (before the slow one times out)',
      );
      const took = Date.now() - t0;
      const st = await status(d);
      const slowSt = st.caches.find((x) => x.url === slowUrl);
      assert.equal(slowSt?.done, 0, 'the stalled cache got nothing');
      assert.ok((slowSt?.pending ?? 0) >= drvs.length);
      assert.equal(readdirSync(join(fastDir, 'traces')).length, drvs.length);
      await statusAnswersWithin(d, STATUS_DEADLINE_MS);
      t.diagnostic(`the file:// cache had all ${drvs.length} traces ${took} ms after the build started`);
      // the slow cache comes back: its stalled requests fail, it catches up, nothing twice
      slow.mode = 'ok';
      slow.dropConnections();
      const p = await d.cli(['push', '--wait']);
      assert.equal(p.code, 0, p.stdout + p.stderr);
      assert.equal((await status(d)).caches.find((x) => x.url === slowUrl)?.done, drvs.length);
      const lines = slow.lines();
      assert.equal(lines.length, drvs.length);
      assert.equal(new Set(lines).size, lines.length, 'no line twice');
    } finally {
      assert.equal(await d.stop(), 0);
      await slow.close();
    }
  });

  test('SIGTERM while a cache stalls: the daemon stops within seconds, the rows wait in the outbox', { timeout: 120_000 }, async () => {
    const slow = new TestCache();
    slow.mode = 'stall';
    const url = await slow.listen();
    const d = await startDaemon({ extraConfig: { caches: [{ url }] } });
    try {
      const { drvs, args } = await many(2, 'stallstop');
      assert.equal((await nixBuildWithHook(d.spool, args)).code, 0);
      await waitFor(async () => (await status(d)).database.traces === drvs.length, 20_000, 'the traces');
      // a publishing round is now waiting on the cache
      await waitFor(() => slow.requests > 0, 20_000, 'a request stalled at the cache');
      const t0 = Date.now();
      assert.equal(await d.stop(), 0);
      const took = Date.now() - t0;
      assert.ok(took < 15_000, `stopped in ${took} ms`);
      assert.match(d.stderr(), /left unfinished publishing rounds/);
      const db = new Database(d.dbFile, { readonly: true });
      const rows = db.prepare('SELECT state, count(*) AS n FROM outbox GROUP BY state').all() as { state: string; n: number }[];
      db.close();
      assert.deepEqual(rows, [{ state: 'pending', n: drvs.length }]);
    } finally {
      await d.stop();
      await slow.close();
    }
  });

  test('rows failed permanently (403) are requeued by `trace-daemon retry`; RequestTimeTooSkewed is retried by itself', { timeout: 300_000 }, async () => {
    const cache = new TestCache();
    cache.mode = 'forbidden';
    const url = await cache.listen();
    const d = await startDaemon({ extraConfig: { caches: [{ url }] } });
    try {
      const { drvs, args } = await many(4, 'requeue');
      assert.equal((await nixBuildWithHook(d.spool, args)).code, 0);
      const p = await d.cli(['push', '--wait']);
      assert.equal(p.code, 1, 'a failed cache makes push --wait exit 1');
      let st = (await status(d)).caches[0];
      assert.equal(st?.failed, drvs.length);
      assert.equal(st?.pending, 0);
      assert.match(st?.lastError?.message ?? '', /HTTP 403/);
      const human = await d.cli(['status']);
      assert.match(human.stdout, new RegExp(`${drvs.length} failed[\\s\\S]*failed rows wait for: trace-daemon retry --cache ${url.replace(/[.]/g, '\\.')}`));
      // nothing comes back by itself
      await new Promise((r) => setTimeout(r, 3000));
      assert.equal((await status(d)).caches[0]?.failed, drvs.length);
      const unknown = await d.cli(['retry', '--cache', 'http://127.0.0.1:1/other']);
      assert.equal(unknown.code, 1);
      assert.match(unknown.stderr, /no cache http:\/\/127\.0\.0\.1:1\/other in the configuration/);
      // the clock is wrong now: 403 RequestTimeTooSkewed is transient, rows stay pending
      cache.mode = 'skewed';
      const r1 = await d.cli(['retry', '--cache', url, '--json']);
      assert.equal(r1.code, 0, r1.stderr);
      assert.equal((JSON.parse(r1.stdout) as { requeued: number }).requeued, drvs.length);
      await waitFor(async () => /RequestTimeTooSkewed/.test((await status(d)).caches[0]?.lastError?.message ?? ''), 20_000, 'the skew error');
      st = (await status(d)).caches[0];
      assert.equal(st?.failed, 0, 'a skewed clock is not a permanent failure');
      assert.equal(st?.pending, drvs.length);
      // fixed: push --wait publishes everything, each line once
      cache.mode = 'ok';
      const p2 = await d.cli(['push', '--wait']);
      assert.equal(p2.code, 0, p2.stdout + p2.stderr);
      st = (await status(d)).caches[0];
      assert.equal(st?.done, drvs.length);
      const lines = cache.lines();
      assert.equal(lines.length, drvs.length);
      assert.equal(new Set(lines).size, lines.length, 'no line twice');
      // nothing failed: retry says so
      const r2 = await d.cli(['retry']);
      assert.equal(r2.code, 0);
      assert.match(r2.stdout, /^0 failed outbox rows queued again/);
    } finally {
      assert.equal(await d.stop(), 0);
      await cache.close();
    }
  });
});

describe('a corrupt database', () => {
  test('every client command says so and exits non-zero; the daemon keeps its spool', { timeout: 300_000 }, async () => {
    const d = await startDaemon();
    const { args } = await many(3, 'corrupt');
    assert.equal((await nixBuildWithHook(d.spool, args)).code, 0);
    assert.equal((await d.cli(['push', '--wait'])).code, 0);
    assert.equal(await d.stop(), 0);
    // overwrite the pages of the traces and outbox tables, keeping the schema page
    const db = new Database(d.dbFile);
    const roots = db.prepare("SELECT name, rootpage FROM sqlite_master WHERE name IN ('traces', 'outbox')").all() as { name: string; rootpage: number }[];
    const pageSize = db.pragma('page_size', { simple: true }) as number;
    db.close();
    const fd = openSync(d.dbFile, 'r+');
    for (const r of roots) writeSync(fd, Buffer.alloc(pageSize, 0x5a), 0, pageSize, (r.rootpage - 1) * pageSize);
    closeSync(fd);
    // the daemon starts (the schema is readable) and must answer every command with an error
    const child = spawn(DAEMON_CLI, ['run', '--config', d.config], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
    try {
      await waitFor(() => existsSync(d.socket) || child.exitCode !== null, 15_000, 'the daemon to listen');
      assert.equal(child.exitCode, null, err);
      // a real build whose record arrives now: it cannot commit, and must wait in the spool
      const lateSpool = tempDir();
      assert.equal((await nixBuildWithHook(lateSpool, (await many(1, 'corrupt-late')).args)).code, 0);
      const [late] = spoolRecords(lateSpool);
      assert.ok(late);
      writeFileSync(join(d.spool, late), readFileSync(join(lateSpool, late)));
      for (const cmd of [
        ['status'],
        ['status', '--json'],
        ['list'],
        ['list', '--json'],
        ['show', '/nix/store/00000000000000000000000000000000-x.drv'],
        ['push', '--wait'],
        ['retry'],
      ]) {
        const r = await d.cli(cmd);
        assert.notEqual(r.code, 0, `${cmd.join(' ')} exits non-zero: ${r.stdout} ${r.stderr}`);
        assert.match(r.stderr, /malformed|not a database/i, `${cmd.join(' ')}: ${r.stderr}`);
        assert.doesNotMatch(r.stderr, /Cannot read properties/);
        // push reports the spool it could not empty; the others print no data at all
        if (cmd[0] !== 'push') assert.equal(r.stdout, '', `${cmd.join(' ')} prints no data`);
      }
      assert.deepEqual(spoolRecords(d.spool), [late], 'the record waits in the spool');
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  });

  test('a database that is not SQLite at all stops the daemon at start, exit 2, naming the file', async () => {
    const dir = tempDir();
    const k = await nixKeyPair(dir, 'notdb-1');
    mkdirSync(join(dir, 'st'));
    writeFileSync(join(dir, 'st', 'buildtrace.db'), 'this is not a database'.repeat(100));
    const cfg = join(dir, 'c.json');
    writeFileSync(cfg, JSON.stringify({ signingKeyFile: k.secretFile, spoolDir: join(dir, 's'), stateDir: join(dir, 'st'), socket: join(dir, 'sock') }));
    const r = await run(DAEMON_CLI, ['run', '--config', cfg]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /cannot open database .*buildtrace\.db: file is not a database/);
  });
});
