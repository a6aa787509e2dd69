// ci: nix (runs on every Nix: the host and the trixie and sid chroots; see scripts/run-tests.sh)
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, readdirSync, readFileSync, renameSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, relative } from 'node:path';
import Database from 'better-sqlite3';
import { after, before, describe, test } from 'node:test';
import { S3Cache } from '../src/cache/s3-cache.js';
import { buildTraceFingerprint } from '../src/nix/build-trace.js';
import { parsePublicKey, parseSecretKey, verifyFingerprintSig } from '../src/nix/nix-key.js';
import { nix32Encode } from '../src/nix/nix32.js';
import { createBundle } from '../src/trace/bundle.js';
import { FIXTURES, must, nixBuildWithHook, nixEnv, requireOrSkip, run, salt, setEnv, startDaemon, tempDir, type DaemonHandle } from './helpers.js';
import { MOTO_VERSION, MOTO_WHY, startMoto } from './moto.js';
import { hashOf, httpGet, nixRealise, serveStatus, startServe, type ServeStatus } from './serve-helpers.js';

/**
 * The substituter between stock Nix and upstreams it does not control: an HTTP cache run by an
 * attacker (a small server here, serving the real cache's files except where a case lies), a
 * file:// cache with links and FIFOs planted in it, and an S3 cache (moto, signatures checked).
 * What trace-verify's own reads do against such caches is test/hostile-cache.test.ts; here it
 * is what serve adds: the HTTP side, NAR streaming, Nix as the client.
 */

/** One honest builder's outputs and traces in a file:// cache: 20 independent leaves. */
interface Fixture {
  readonly dir: string;
  readonly fileCache: string;
  readonly policy: string;
  /** per leaf: its .drv and output path */
  readonly leaves: readonly { readonly drv: string; readonly out: string }[];
  readonly daemon: DaemonHandle;
  /** nix-instantiate's arguments for each salt's leaves */
  readonly instantiate: readonly (readonly string[])[];
  /** a 40 MiB output (mostly zeros) */
  readonly big: { readonly drv: string; readonly out: string };
}

let fixture: Promise<Fixture> | undefined;
after(async () => {
  if (fixture) await (await fixture).daemon.stop();
});

function setUp(): Promise<Fixture> {
  fixture ??= (async () => {
    const dir = tempDir('serve-upstreams-');
    const fileCache = join(dir, 'file-cache');
    const daemon = await startDaemon({
      keyName: 'builder-a',
      extraConfig: { caches: [{ url: `file://${fileCache}`, buildTraceV2: true }], uploadOutputs: true },
    });
    const leaves: { drv: string; out: string }[] = [];
    const instantiate: string[][] = [];
    // two salts: the fixture's 10 leaves twice, 20 derivations that depend on nothing
    for (const s of [salt(), salt()]) {
      const args = [join(FIXTURES, 'serve.nix'), '--argstr', 'salt', s, '--argstr', 'nondet', join(dir, 'nondet'), '-A', 'leaves'];
      instantiate.push(args);
      const drvs = (await must('nix-instantiate', args, { env: nixEnv() })).stdout.trim().split('\n');
      const b = await nixBuildWithHook(daemon.spool, args);
      assert.equal(b.code, 0, b.stderr);
      const outs = b.stdout.trim().split('\n');
      assert.equal(outs.length, drvs.length);
      for (const [i, drv] of drvs.entries()) leaves.push({ drv, out: outs[i] as string });
    }
    // a chain of floating content-addressed derivations: Nix >= 2.35 asks for their build traces
    const caArgs = [...(instantiate[0] as string[]).slice(0, -2), '-A', 'caChain'];
    instantiate.push(caArgs);
    const bc = await nixBuildWithHook(daemon.spool, caArgs);
    assert.equal(bc.code, 0, bc.stderr);
    // one large NAR: 40 MiB
    const bigArgs = [...(instantiate[0] as string[]).slice(0, -2), '-A', 'big'];
    instantiate.push(bigArgs);
    const bigDrv = (await must('nix-instantiate', bigArgs, { env: nixEnv() })).stdout.trim();
    const bb = await nixBuildWithHook(daemon.spool, bigArgs);
    assert.equal(bb.code, 0, bb.stderr);
    const big = { drv: bigDrv, out: bb.stdout.trim() };
    const pushed = await daemon.cli(['push', '--wait']);
    assert.equal(pushed.code, 0, pushed.stdout + pushed.stderr);
    const policy = join(dir, 'policy.json');
    writeFileSync(policy, JSON.stringify({ keys: { A: { publicKey: daemon.keys.publicKey } }, trust: { threshold: 1, of: ['A'] } }));
    return { dir, fileCache, policy, leaves, daemon, instantiate, big };
  })();
  return fixture;
}

/** A consumer store under its own root holding only the leaves' .drv files. */
async function consumer(f: Fixture): Promise<string> {
  const root = join(tempDir('serve-upstreams-consumer-'), 'store');
  for (const args of f.instantiate) await must('nix-instantiate', ['--store', root, ...args], { env: nixEnv() });
  return root;
}

type Leaf = { readonly drv: string; readonly out: string };
/** Three of the fixture's leaves by index. */
const threeLeaves = (f: Fixture, a: number, b: number, c: number): [Leaf, Leaf, Leaf] => [a, b, c].map((i) => f.leaves[i] as Leaf) as [Leaf, Leaf, Leaf];

const narinfoText = (f: Fixture, out: string): string => readFileSync(join(f.fileCache, `${hashOf(out)}.narinfo`), 'utf8');
const narKey = (f: Fixture, out: string): string => /^URL: (.*)$/m.exec(narinfoText(f, out))?.[1] as string;

/** How a hostile upstream answers one object. */
type Lie = (req: IncomingMessage, res: ServerResponse, honest: Buffer) => void;

/** An HTTP cache that serves `root`'s files honestly, except for the objects `lies` names. */
async function hostileUpstream(root: string, lies: ReadonlyMap<string, Lie>): Promise<{ url: string; server: Server; requests: Map<string, number> }> {
  const requests = new Map<string, number>();
  const server = createServer((req, res) => {
    const key = decodeURIComponent((req.url ?? '/').split('?')[0]?.slice(1) ?? '');
    requests.set(key, (requests.get(key) ?? 0) + 1);
    let honest: Buffer | undefined;
    try {
      honest = readFileSync(join(root, key));
    } catch {
      // absent
    }
    const lie = lies.get(key);
    if (lie) return lie(req, res, honest ?? Buffer.alloc(0));
    if (!honest) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-length': honest.length }).end(honest);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, requests };
}

/** Writes `chunk` for ever (as fast as the reader takes it) after `head`, until the reader goes. */
const endless =
  (chunk: Buffer, head?: (honest: Buffer) => Buffer): Lie =>
  (_req, res, honest) => {
    res.writeHead(200);
    if (head) res.write(head(honest));
    let gone = false;
    res.once('close', () => (gone = true));
    const pump = (): void => {
      while (!gone && res.write(chunk)) {
        // until the socket's buffer is full
      }
    };
    res.on('drain', pump);
    pump();
  };

/** Sends the first half of the honest body, then nothing, the connection left open. */
const stallsMidway: Lie = (_req, res, honest) => {
  res.writeHead(200, { 'content-length': honest.length });
  res.write(honest.subarray(0, honest.length >> 1));
};

/** One byte every `ms`: never silent for long, but far slower than any deadline allows. */
const trickle =
  (ms: number): Lie =>
  (_req, res, honest) => {
    res.writeHead(200, { 'content-length': honest.length });
    let at = 0;
    const t = setInterval(() => {
      if (at < honest.length) res.write(honest.subarray(at, ++at));
    }, ms);
    res.once('close', () => clearInterval(t));
  };

/** Sends the first half, then closes the connection. */
const stopsMidway: Lie = (_req, res, honest) => {
  res.writeHead(200, { 'content-length': honest.length });
  res.write(honest.subarray(0, honest.length >> 1), () => res.destroy());
};

/** A redirect to itself: a client that follows it loops for ever. */
const redirectsToItself: Lie = (req, res) => {
  res.writeHead(302, { location: req.url ?? '/' }).end();
};

/** An HTTP error status with a short body (a broken or overloaded upstream). */
const answers =
  (status: number): Lie =>
  (_req, res) => {
    res.writeHead(status, { 'content-type': 'text/plain' }).end(`upstream says ${status}\n`);
  };

/** Accepts the request and never answers. */
const neverAnswers: Lie = () => {
  // the connection stays open until the client gives up
};

/** Announces more bytes than it sends, then closes. */
const announcesMore: Lie = (_req, res, honest) => {
  res.writeHead(200, { 'content-length': honest.length * 2 });
  res.end(honest, () => res.destroy());
};

/** Announces fewer bytes than it has (the client reads only those). */
const announcesLess: Lie = (_req, res, honest) => {
  const socket = res.socket;
  res.writeHead(200, { 'content-length': honest.length >> 1 });
  res.write(honest.subarray(0, honest.length >> 1));
  // the rest goes down the socket anyway, then the connection closes
  socket?.end(honest.subarray(honest.length >> 1));
};

/** The honest narinfo with one field's value replaced (or a line added). */
const narinfoWith =
  (edit: (text: string) => string): Lie =>
  (_req, res, honest) => {
    const body = Buffer.from(edit(honest.toString('utf8')));
    res.writeHead(200, { 'content-length': body.length }).end(body);
  };

/** Peak RSS of a process so far (VmHWM), in MB. */
function peakRssMb(pid: number): number {
  const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1]) / 1024;
}

const refusalsOf = (st: ServeStatus, path: string): string[] => st.lastRefusals.filter((r) => r.path === path).flatMap((r) => r.codes);

async function validIn(root: string, path: string): Promise<boolean> {
  return (await run('nix-store', ['--store', root, '--check-validity', path], { env: nixEnv() })).code === 0;
}

/** Each hostile case: the leaf it lies about, the upstream object, the lie, and what must come of it. */
interface Case {
  readonly name: string;
  readonly leaf: number;
  readonly object: 'narinfo' | 'nar';
  readonly lie: Lie;
  /** refused: a 404 for the narinfo (codes kept); cut: the NAR is refused or cut off; served: Nix gets it (the lie changed nothing it sees) */
  readonly expect: {
    readonly outcome: 'refused' | 'cut' | 'served';
    readonly code?: RegExp;
    readonly detail?: RegExp;
    /** what Nix's error names (the status the substituter answered it with) */
    readonly nix?: RegExp;
  };
}

const CASES: readonly Case[] = [
  {
    name: 'an endless narinfo',
    leaf: 0,
    object: 'narinfo',
    lie: endless(Buffer.alloc(1 << 16, 0x41)),
    expect: { outcome: 'refused', code: /source-unreadable/, detail: /maxObjectBytes/ },
  },
  {
    name: 'a narinfo of one 2 MiB line',
    leaf: 1,
    object: 'narinfo',
    lie: narinfoWith((t) => `${t}X-Junk: ${'j'.repeat(2 << 20)}`),
    expect: { outcome: 'refused', code: /source-unreadable/, detail: /maxObjectBytes/ },
  },
  {
    name: 'a narinfo with a 900 KB unknown field (under the cap; Nix ignores unknown fields too)',
    leaf: 2,
    object: 'narinfo',
    lie: narinfoWith((t) => `${t}X-Junk: ${'j'.repeat(900 << 10)}\n`),
    expect: { outcome: 'served' },
  },
  {
    name: 'a narinfo that redirects to itself',
    leaf: 3,
    object: 'narinfo',
    lie: redirectsToItself,
    expect: { outcome: 'refused', code: /source-unreadable/, detail: /HTTP 302/ },
  },
  {
    name: 'a narinfo whose Content-Length says twice its size',
    leaf: 4,
    object: 'narinfo',
    lie: announcesMore,
    expect: { outcome: 'refused', code: /source-unreadable/, detail: /mid-body|no complete answer within 2000 ms/ },
  },
  {
    name: 'a narinfo that stops midway',
    leaf: 5,
    object: 'narinfo',
    lie: stopsMidway,
    expect: { outcome: 'refused', code: /source-unreadable/, detail: /mid-body/ },
  },
  {
    name: 'a narinfo with an absurd NarSize (2^53 - 1; NarSize is not attested)',
    leaf: 6,
    object: 'narinfo',
    lie: narinfoWith((t) => t.replace(/^NarSize: \d+$/m, `NarSize: ${Number.MAX_SAFE_INTEGER}`)),
    expect: { outcome: 'refused', code: /LIMIT_EXCEEDED/, detail: /NarSize 9007199254740991 is past the limit maxNarBytes/ },
  },
  {
    name: 'a narinfo with an absurd FileSize (2^53 - 1): the NAR is still capped by its size',
    leaf: 7,
    object: 'narinfo',
    lie: narinfoWith((t) => t.replace(/^FileSize: \d+$/m, `FileSize: ${Number.MAX_SAFE_INTEGER}`)),
    expect: { outcome: 'served' },
  },
  {
    name: 'an endless NAR (the real xz stream, then xz stream padding for ever)',
    leaf: 8,
    object: 'nar',
    lie: endless(Buffer.alloc(1 << 16), (h) => h),
    expect: { outcome: 'cut', code: /LIMIT_EXCEEDED/ },
  },
  {
    name: 'a NAR that stalls midway, the connection left open',
    leaf: 9,
    object: 'nar',
    lie: stallsMidway,
    // a NAR this small: the idle and the total deadline are both 2 s, either may fire first
    expect: { outcome: 'cut', code: /CACHE_ERROR/, detail: /not done within|silent for 2000 ms/ },
  },
  {
    name: 'a NAR that trickles one byte every 300 ms (total deadline)',
    leaf: 10,
    object: 'nar',
    lie: trickle(300),
    expect: { outcome: 'cut', code: /CACHE_ERROR/, detail: /not done within/ },
  },
  { name: 'a NAR whose Content-Length says half its size', leaf: 11, object: 'nar', lie: announcesLess, expect: { outcome: 'cut', code: /content-mismatch/ } },
  { name: 'a NAR whose Content-Length says twice its size', leaf: 12, object: 'nar', lie: announcesMore, expect: { outcome: 'cut', code: /CACHE_ERROR/ } },
  { name: 'a NAR that stops midway', leaf: 13, object: 'nar', lie: stopsMidway, expect: { outcome: 'cut', code: /CACHE_ERROR/, detail: /mid-body/ } },
  { name: 'a NAR that redirects to itself', leaf: 14, object: 'nar', lie: redirectsToItself, expect: { outcome: 'cut', code: /CACHE_ERROR/ } },
  // leaves 15 and 16 are also the file:// case's: refused there too, so nothing lands either way
  {
    name: 'a NAR upstream answering 500 (its narinfo honest)',
    leaf: 15,
    object: 'nar',
    lie: answers(500),
    expect: { outcome: 'cut', code: /^CACHE_ERROR$/, detail: /NAR from .*HTTP 500/, nix: /\b502\b/ },
  },
  {
    name: 'a NAR upstream answering 503 (its narinfo honest)',
    leaf: 16,
    object: 'nar',
    lie: answers(503),
    expect: { outcome: 'cut', code: /^CACHE_ERROR$/, detail: /NAR from .*HTTP 503/, nix: /\b502\b/ },
  },
];

describe('trace-verify serve against hostile upstreams: 404 or a cut-off NAR, bounded, Nix never hangs, nothing wrong lands', () => {
  let f: Fixture;
  let root: string;
  before(async () => {
    f = await setUp();
    root = await consumer(f);
  });

  test('a hostile HTTP upstream, case by case, with stock Nix as the client', async (t) => {
    const lies = new Map<string, Lie>();
    for (const c of CASES) {
      const out = f.leaves[c.leaf]?.out as string;
      lies.set(c.object === 'narinfo' ? `${hashOf(out)}.narinfo` : narKey(f, out), c.lie);
    }
    const up = await hostileUpstream(f.fileCache, lies);
    const s = await startServe(root, f.policy, [up.url], tempDir('serve-state-'), ['--request-timeout-ms', '2000', '--retries', '0']);
    try {
      const failed: string[] = [];
      for (const c of CASES) {
        try {
          await oneCase(c);
        } catch (err) {
          failed.push(err instanceof Error ? err.message : String(err));
        }
      }
      assert.deepEqual(failed, []);
      const rss = peakRssMb(s.child.pid as number);
      t.diagnostic(`serve's peak RSS over all cases: ${rss.toFixed(0)} MB`);
      assert.ok(rss < 300, `${rss} MB`);
    } finally {
      await s.stop();
      up.server.closeAllConnections();
      up.server.close();
    }

    async function oneCase(c: Case): Promise<void> {
      const leaf = f.leaves[c.leaf] as { drv: string; out: string };
      const r = await nixRealise(root, s, [leaf.drv], 120_000);
      const st = await serveStatus(s);
      const codes = refusalsOf(st, leaf.out);
      const what = `${c.name}: Nix exit ${r.code} after ${r.ms} ms; refusals ${JSON.stringify(codes)}\n${r.stderr.slice(-1500)}\n${s.stderr().slice(-1500)}`;
      t.diagnostic(`${c.name}: Nix exit ${r.code} in ${r.ms} ms, codes ${codes.join(',') || '-'}`);
      assert.ok(r.ms < 60_000, what);
      if (c.expect.outcome === 'served') {
        assert.equal(r.code, 0, what);
        assert.equal(await validIn(root, leaf.out), true, what);
        // what Nix got is the substituter's own narinfo: small, whatever the upstream sent
        const g = await httpGet(`${s.url}/${hashOf(leaf.out)}.narinfo`);
        assert.equal(g.status, 200);
        assert.ok(g.body.length < 4096, `${g.body.length} bytes`);
        assert.doesNotMatch(g.body, /X-Junk|FileSize: 9007199254740991/);
        return;
      }
      assert.notEqual(r.code, 0, what);
      assert.equal(await validIn(root, leaf.out), false, `${c.name}: nothing may land`);
      if (c.expect.nix) {
        assert.match(r.stderr, c.expect.nix, what);
        assert.ok(st.lastRefusals.find((x) => x.path === leaf.out)?.detail.includes(narKey(f, leaf.out)), `${what}: the NAR object is named`);
      }
      if (c.expect.outcome === 'refused') {
        const g = await httpGet(`${s.url}/${hashOf(leaf.out)}.narinfo`);
        assert.equal(g.status, 404, what);
        assert.equal(up.requests.has(narKey(f, leaf.out)), false, `${c.name}: no NAR was asked for`);
      } else assert.ok((up.requests.get(narKey(f, leaf.out)) ?? 0) >= 1, `${c.name}: the NAR was asked for`);
      assert.ok(codes.length > 0, what);
      if (c.expect.code)
        assert.ok(
          codes.some((x) => c.expect.code?.test(x)),
          what,
        );
      // the reason names the upstream and the object
      const detail = st.lastRefusals.find((x) => x.path === leaf.out)?.detail ?? '';
      t.diagnostic(`  ${detail.slice(0, 400)}`);
      assert.ok(detail.includes(up.url), detail);
      if (c.expect.detail) assert.match(detail, c.expect.detail, what);
    }
  });

  test('a trace removed or replaced by a lying one upstream after a verdict: noticed once --recheck-seconds has passed; the verdict kept in SQLite is not reused after a restart', async (t) => {
    const cache = join(f.dir, 'editable-cache');
    cpSync(f.fileCache, cache, { recursive: true });
    // leaves no other test installs in its store; this test has a fresh store of its own
    const [gone, lying, later] = threeLeaves(f, 3, 4, 5);
    const fresh = await consumer(f);
    const stateDir = tempDir('serve-state-');
    const RECHECK_S = 3;
    let s = await startServe(fresh, f.policy, [`file://${cache}`], stateDir, ['--recheck-seconds', String(RECHECK_S)]);
    try {
      for (const l of [gone, lying, later]) {
        const g = await httpGet(`${s.url}/${hashOf(l.out)}.narinfo`);
        assert.equal(g.status, 200, `${g.body}\n${s.stderr()}`);
      }
      const verifiedAt = Date.now();
      const first = await serveStatus(s);
      assert.equal(first.verdictsComputed, 3, JSON.stringify(first));
      // the edit: one trace deleted; two replaced by a lying one (A's own key, another NAR hash claimed)
      const trace = (l: { drv: string }): string => join(cache, 'traces', hashOf(l.drv));
      for (const l of [gone, lying, later]) assert.ok(statSync(trace(l)).isFile(), `${trace(l)}: an input-addressed leaf's trace is under its own .drv's hash`);
      unlinkSync(trace(gone));
      const key = parseSecretKey(readFileSync(f.daemon.keys.secretFile, 'utf8'));
      const db = new Database(f.daemon.dbFile, { readonly: true });
      for (const l of [lying, later]) {
        const row = db.prepare('SELECT statement FROM traces WHERE rdrv_hash = ?').get(hashOf(l.drv)) as { statement: Buffer } | undefined;
        assert.ok(row, l.drv);
        const st = JSON.parse(row.statement.toString('utf8')) as { subject: { digest: { sha256: string } }[] };
        (st.subject[0] as { digest: { sha256: string } }).digest.sha256 = 'ab'.repeat(32);
        writeFileSync(trace(l), `${createBundle(Buffer.from(JSON.stringify(st)), key)}\n`);
      }
      db.close();
      // asked every 500 ms from the edit on: within the window the verdict from before the edit
      // may still answer (that is what the window is: reads and verdicts reused for
      // --recheck-seconds), but asking again must not stretch the window: the first request
      // after it reads the traces again and refuses
      const firstRefusal = new Map<string, number>();
      const statuses: string[] = [];
      while (firstRefusal.size < 2 && Date.now() - verifiedAt < RECHECK_S * 1000 + 6000) {
        for (const l of [gone, lying]) {
          if (firstRefusal.has(l.out)) continue;
          const g = await httpGet(`${s.url}/${hashOf(l.out)}.narinfo`);
          assert.ok(g.status === 200 || g.status === 404, g.body);
          statuses.push(`${hashOf(l.out).slice(0, 6)} ${Date.now() - verifiedAt} ms: ${g.status}`);
          if (g.status === 404) firstRefusal.set(l.out, Date.now() - verifiedAt);
        }
        await new Promise((r) => setTimeout(r, 500));
      }
      t.diagnostic(`asked after the edit (ms after the verdict): ${statuses.join('; ')}`);
      for (const l of [gone, lying]) {
        const at = firstRefusal.get(l.out);
        assert.ok(
          at !== undefined && at < RECHECK_S * 1000 + 3000,
          `${l.out}: first refused ${at} ms after the verdict (window ${RECHECK_S} s): ${statuses.join('; ')}`,
        );
      }
      const expected = new Map([
        [gone, /^(no-bundle|threshold-not-met)$/],
        [lying, /^content-mismatch$/],
      ]);
      for (const [l, code] of expected) {
        const g = await httpGet(`${s.url}/${hashOf(l.out)}.narinfo`);
        assert.equal(g.status, 404, `${l.out}: after the window: ${g.body}`);
        const st = await serveStatus(s);
        const codes = refusalsOf(st, l.out);
        t.diagnostic(`after the window: ${hashOf(l.out)}.narinfo -> 404 ${codes.join(',')}`);
        assert.ok(codes.length > 0 && codes.every((x) => code.test(x)), `${l.out}: ${JSON.stringify(st.lastRefusals)}`);
        // stock Nix with --max-jobs 0 into a store that does not have it: fails, nothing lands
        const r = await nixRealise(fresh, s, [l.drv], 120_000);
        assert.notEqual(r.code, 0, r.stderr);
        assert.equal(await validIn(fresh, l.out), false);
      }
      // and past the refusals' own window, when a verdict is taken from SQLite if its traces
      // are unchanged: only a verdict decided on the edited traces may be (a verdict decided
      // before the edit, or one keyed on lines it was not decided on, would answer 200)
      const refusedLast = Math.max(...firstRefusal.values());
      const again: string[] = [];
      while (Date.now() - verifiedAt < refusedLast + RECHECK_S * 1000 + 1500) {
        for (const l of [gone, lying]) {
          const g = await httpGet(`${s.url}/${hashOf(l.out)}.narinfo`);
          again.push(`${hashOf(l.out).slice(0, 6)} ${Date.now() - verifiedAt} ms: ${g.status}`);
          assert.equal(g.status, 404, `${l.out}: answered again after its refusal: ${again.join('; ')}\n${g.body}`);
        }
        await new Promise((r) => setTimeout(r, 400));
      }
      const afterWindow = await serveStatus(s);
      t.diagnostic(
        `asked again up to ${RECHECK_S * 1000 + 1500} ms past the last first refusal: all 404 (${again.length} answers; verdicts computed ${afterWindow.verdictsComputed}, reused ${afterWindow.verdictsReused})`,
      );
    } finally {
      await s.stop();
    }
    // restart on the same state directory: `later`'s verdict row was written before the edit
    // and not asked for since; its traces now differ, so the row is not reused
    const restartedFrom = await serveStatus(s);
    s = await startServe(fresh, f.policy, [`file://${cache}`], stateDir, ['--recheck-seconds', String(RECHECK_S)]);
    try {
      const g = await httpGet(`${s.url}/${hashOf(later.out)}.narinfo`);
      assert.equal(g.status, 404, g.body);
      const st = await serveStatus(s);
      assert.equal(st.verdictsReused, restartedFrom.verdictsReused, JSON.stringify(st));
      assert.equal(st.verdictsComputed, restartedFrom.verdictsComputed + 1, JSON.stringify(st));
      assert.deepEqual(refusalsOf(st, later.out), ['content-mismatch'], JSON.stringify(st.lastRefusals));
      t.diagnostic(
        `after a restart: ${hashOf(later.out)}.narinfo -> 404 content-mismatch; verdicts computed ${st.verdictsComputed}, reused ${st.verdictsReused}`,
      );
    } finally {
      await s.stop();
    }
  });

  test('a 40 MiB NAR that streams for longer than the request deadline, then stalls: cut off by the idle deadline alone, in bounded time and memory; nothing lands', async (t) => {
    const big = f.big;
    const nar = execFileSync('xz', ['-dc', join(f.fileCache, narKey(f, big.out))], { maxBuffer: 1 << 30 });
    assert.ok(nar.length >= 40 << 20, `${nar.length} bytes`);
    // served uncompressed (an upstream may): the bytes sent are the NAR's, paced
    const plainKey = `nar/${hashOf(big.out)}-plain.nar`;
    const CHUNK = 1 << 20;
    const STALL_AT = 24 * CHUNK;
    const EVERY_MS = 150;
    const TIMEOUT_MS = 2000;
    /** per upstream NAR request: bytes sent, ms from the request to the cut, ms from the last byte to the cut */
    const attempts: { sent: number; ms: number; afterStallMs: number }[] = [];
    const lies = new Map<string, Lie>([
      [
        `${hashOf(big.out)}.narinfo`,
        narinfoWith((text) =>
          text
            .replace(/^URL: .*$/m, `URL: ${plainKey}`)
            .replace(/^Compression: .*$/m, 'Compression: none')
            .replace(/^FileHash: .*\n/m, '')
            .replace(/^FileSize: .*\n/m, ''),
        ),
      ],
      [
        plainKey,
        (_req, res) => {
          const t0 = Date.now();
          let at = 0;
          let lastByte = t0;
          res.writeHead(200, { 'content-length': nar.length });
          const timer = setInterval(() => {
            if (at >= STALL_AT) return clearInterval(timer);
            // the stall starts when the last chunk has left (written out to the socket)
            res.write(nar.subarray(at, at + CHUNK), () => (lastByte = Date.now()));
            at += CHUNK;
          }, EVERY_MS);
          res.once('close', () => {
            clearInterval(timer);
            attempts.push({ sent: at, ms: Date.now() - t0, afterStallMs: Date.now() - lastByte });
          });
        },
      ],
    ]);
    const up = await hostileUpstream(f.fileCache, lies);
    const s = await startServe(root, f.policy, [up.url], tempDir('serve-state-'), ['--request-timeout-ms', String(TIMEOUT_MS), '--retries', '0']);
    try {
      const r = await nixRealise(root, s, [big.drv], 120_000);
      const st = await serveStatus(s);
      const what = `Nix exit ${r.code} after ${r.ms} ms; attempts ${JSON.stringify(attempts)}\n${r.stderr.slice(-1500)}\n${s.stderr().slice(-1500)}`;
      t.diagnostic(`Nix exit ${r.code} in ${r.ms} ms; upstream NAR requests (bytes sent, ms until cut off): ${JSON.stringify(attempts)}`);
      assert.notEqual(r.code, 0, what);
      assert.ok(r.ms < 60_000, what);
      assert.equal(await validIn(root, big.out), false, what);
      assert.ok(attempts.length >= 1, what);
      for (const a of attempts) {
        // all 24 MiB went out (progress never tripped a deadline), and the cut came one idle
        // deadline after the stall: long after requestTimeoutMs from the start (so not a total
        // deadline of that length), long before the total one (requestTimeoutMs + 40 s at 1 MiB/s)
        assert.equal(a.sent, STALL_AT, what);
        assert.ok(a.ms > TIMEOUT_MS + 1000, what);
        assert.ok(a.afterStallMs > TIMEOUT_MS - 500 && a.afterStallMs < TIMEOUT_MS + 6000, what);
      }
      const refusal = st.lastRefusals.find((x) => x.path === big.out);
      assert.deepEqual(refusal?.codes, ['CACHE_ERROR'], what);
      assert.match(refusal?.detail ?? '', new RegExp(`silent for ${TIMEOUT_MS} ms`), what);
      assert.ok(refusal?.detail.includes(`${up.url}/${plainKey}`), refusal?.detail);
      const rss = peakRssMb(s.child.pid as number);
      t.diagnostic(`serve's peak RSS: ${rss.toFixed(0)} MB`);
      assert.ok(rss < 200, `${rss} MB`);
    } finally {
      await s.stop();
      up.server.closeAllConnections();
      up.server.close();
    }
  });

  test('slow traces holding both verification slots: an independent narinfo is answered within the wait bound (404 LIMIT_EXCEEDED, kept in status), and served once a slot is free', async (t) => {
    const [held1, held2, third] = threeLeaves(f, 0, 1, 2);
    const traceKey = (l: { drv: string }): string => `traces/${hashOf(l.drv)}`;
    for (const l of [held1, held2, third]) assert.ok(statSync(join(f.fileCache, traceKey(l))).isFile());
    const lies = new Map<string, Lie>([
      [traceKey(held1), neverAnswers],
      [traceKey(held2), neverAnswers],
    ]);
    const up = await hostileUpstream(f.fileCache, lies);
    const TIMEOUT_MS = 3000;
    // 3 attempts of 3 s at each stalled trace: the slots stay held for 9 s and more
    const s = await startServe(root, f.policy, [up.url], tempDir('serve-state-'), ['--request-timeout-ms', String(TIMEOUT_MS), '--retries', '2']);
    try {
      let heldDone = 0;
      const held = [held1, held2].map((l) => httpGet(`${s.url}/${hashOf(l.out)}.narinfo`).finally(() => heldDone++));
      // both slots taken: the stalled trace objects were asked for
      const t1 = Date.now();
      while (!(up.requests.has(traceKey(held1)) && up.requests.has(traceKey(held2)))) {
        assert.ok(Date.now() - t1 < 10_000, 'the held verifications never read their traces');
        await new Promise((r) => setTimeout(r, 50));
      }
      const t0 = Date.now();
      const g = await httpGet(`${s.url}/${hashOf(third.out)}.narinfo`);
      const ms = Date.now() - t0;
      t.diagnostic(`the third request: ${g.status} after ${ms} ms (bound ${TIMEOUT_MS} ms) while the two held ones ran: ${g.body.trim().slice(0, 300)}`);
      assert.equal(g.status, 404, g.body);
      assert.match(g.body, /LIMIT_EXCEEDED: .*no verification slot came free/);
      assert.ok(ms >= TIMEOUT_MS - 200 && ms < TIMEOUT_MS + 2500, `${ms} ms`);
      assert.equal(heldDone, 0, 'the held verifications were still running');
      assert.equal(up.requests.has(traceKey(third)), false, 'the third never started verifying');
      const st = await serveStatus(s);
      assert.deepEqual(refusalsOf(st, third.out), ['LIMIT_EXCEEDED'], JSON.stringify(st.lastRefusals));
      // the held ones end on their own deadlines (refused: the traces never came), then the third is served
      const answers = await Promise.all(held);
      t.diagnostic(`the held requests: ${answers.map((a) => a.status).join(', ')} after ${Date.now() - t0} ms`);
      assert.deepEqual(
        answers.map((a) => a.status),
        [404, 404],
      );
      const again = await httpGet(`${s.url}/${hashOf(third.out)}.narinfo`);
      assert.equal(again.status, 200, again.body);
    } finally {
      await s.stop();
      up.server.closeAllConnections();
      up.server.close();
    }
  });

  test('a file:// upstream with a NAR that is a symbolic link to /dev/zero or a FIFO, and a narinfo that is a link: never followed or opened', async (t) => {
    const cache = join(f.dir, 'planted-cache');
    cpSync(f.fileCache, cache, { recursive: true });
    const [zero, fifo, linked] = threeLeaves(f, 15, 16, 17);
    unlinkSync(join(cache, narKey(f, zero.out)));
    symlinkSync('/dev/zero', join(cache, narKey(f, zero.out)));
    unlinkSync(join(cache, narKey(f, fifo.out)));
    execFileSync('mkfifo', [join(cache, narKey(f, fifo.out))]);
    const elsewhere = join(f.dir, 'elsewhere.narinfo');
    renameSync(join(cache, `${hashOf(linked.out)}.narinfo`), elsewhere);
    symlinkSync(elsewhere, join(cache, `${hashOf(linked.out)}.narinfo`));
    const s = await startServe(root, f.policy, [`file://${cache}`], tempDir('serve-state-'), ['--request-timeout-ms', '2000', '--retries', '0']);
    try {
      for (const [leaf, code] of [
        [zero, /CACHE_ERROR/],
        [fifo, /CACHE_ERROR/],
        [linked, /CACHE_ERROR|source-unreadable|content-mismatch/],
      ] as const) {
        const r = await nixRealise(root, s, [leaf.drv], 120_000);
        const st = await serveStatus(s);
        const what = `${leaf.out}: Nix exit ${r.code} after ${r.ms} ms\n${r.stderr.slice(-1000)}\n${JSON.stringify(st.lastRefusals)}`;
        t.diagnostic(
          `${leaf === zero ? '/dev/zero link' : leaf === fifo ? 'FIFO' : 'linked narinfo'}: Nix exit ${r.code} in ${r.ms} ms, codes ${refusalsOf(st, leaf.out).join(',')}`,
        );
        assert.notEqual(r.code, 0, what);
        assert.ok(r.ms < 60_000, what);
        assert.equal(await validIn(root, leaf.out), false, what);
        assert.ok(
          refusalsOf(st, leaf.out).some((x) => code.test(x)),
          what,
        );
        const detail = st.lastRefusals.find((x) => x.path === leaf.out)?.detail ?? '';
        if (leaf !== linked) assert.match(detail, /symbolic link|FIFO/, detail);
      }
      // the FIFO was never opened for reading: a writer would block until a reader came
      assert.equal(statSync(join(cache, narKey(f, fifo.out))).isFIFO(), true);
      const rss = peakRssMb(s.child.pid as number);
      assert.ok(rss < 300, `${rss} MB`);
    } finally {
      await s.stop();
    }
  });

  test('Nix >= 2.35 build-trace-v2 look-ups (built as the daemon publishes them; untested against a real Nix >= 2.35)', async () => {
    const s = await startServe(root, f.policy, [`file://${f.fileCache}`], tempDir('serve-state-'));
    try {
      const dir = join(f.fileCache, 'build-trace-v2');
      const keys = readdirSync(dir).flatMap((rdrv) => readdirSync(join(dir, rdrv)).map((doi) => ({ rdrv, output: doi.replace(/\.doi$/, '') })));
      assert.ok(keys.length >= 6, JSON.stringify(keys));
      const pub = parsePublicKey(s.publicKey);
      for (const k of keys) {
        const published = JSON.parse(readFileSync(join(dir, k.rdrv, `${k.output}.doi`), 'utf8')) as { outPath: string };
        const g = await httpGet(`${s.url}/build-trace-v2/${k.rdrv}/${k.output}.doi`);
        assert.equal(g.status, 200, `${k.rdrv}: ${g.body}\n${JSON.stringify((await serveStatus(s)).lastRefusals)}`);
        const body = JSON.parse(g.body) as { outPath: string; signatures: { keyName: string; sig: string }[] };
        assert.equal(body.outPath, published.outPath);
        assert.equal(body.signatures.length, 1);
        assert.equal(body.signatures[0]?.keyName, pub.name);
        const fp = buildTraceFingerprint(k.rdrv, k.output, body.outPath);
        assert.ok(verifyFingerprintSig(pub, fp, `${pub.name}:${body.signatures[0]?.sig}`), fp);
      }
      // a resolved derivation nothing local resolves to, and an output the derivation lacks
      const first = keys[0] as { rdrv: string };
      const other = `${'0'.repeat(32)}${first.rdrv.slice(32)}`;
      const none = await httpGet(`${s.url}/build-trace-v2/${other}/out.doi`);
      assert.equal(none.status, 404);
      assert.match(none.body, /no-derivation/);
      assert.equal((await httpGet(`${s.url}/build-trace-v2/${first.rdrv}/dev.doi`)).status, 404);
    } finally {
      await s.stop();
    }
  });

  test('200 concurrent connections while one upstream object is slow: the others are still served', async (t) => {
    const [slowNar, slowInfo] = [f.leaves[18], f.leaves[19]] as [{ drv: string; out: string }, { drv: string; out: string }];
    const lies = new Map<string, Lie>([
      [narKey(f, slowNar.out), trickle(500)],
      [`${hashOf(slowInfo.out)}.narinfo`, trickle(500)],
    ]);
    const up = await hostileUpstream(f.fileCache, lies);
    // deadlines long enough that the slow requests are still running when the others are done
    const s = await startServe(root, f.policy, [up.url], tempDir('serve-state-'), ['--request-timeout-ms', '60000', '--retries', '0']);
    try {
      // the slow NAR's narinfo is honest: answer it first, then hold 20 connections on its NAR
      assert.equal((await httpGet(`${s.url}/${hashOf(slowNar.out)}.narinfo`)).status, 200);
      let slowDone = 0;
      const slow = [
        ...Array.from({ length: 20 }, () => httpGet(`${s.url}/nar/${hashOf(slowNar.out)}.nar`)),
        httpGet(`${s.url}/${hashOf(slowInfo.out)}.narinfo`),
      ].map((p) => p.finally(() => slowDone++).catch(() => undefined));
      await new Promise((r) => setTimeout(r, 500));
      const fast = f.leaves.slice(0, 15);
      const t0 = Date.now();
      const answers = await Promise.all(
        Array.from({ length: 200 }, (_, i) => {
          const l = fast[i % fast.length] as { out: string };
          return httpGet(i % 2 === 0 ? `${s.url}/${hashOf(l.out)}.narinfo` : `${s.url}/nar/${hashOf(l.out)}.nar`);
        }),
      );
      const ms = Date.now() - t0;
      t.diagnostic(`200 requests (narinfo and NAR) answered in ${ms} ms while 21 slow ones were held`);
      assert.deepEqual(
        answers.map((a) => a.status),
        answers.map(() => 200),
      );
      assert.equal(slowDone, 0, 'the slow requests were still running');
      assert.ok(ms < 45_000, `${ms} ms`);
      for (const a of answers.filter((_, i) => i % 2 === 1)) assert.match(a.body, /nix-archive-1/);
      void slow;
    } finally {
      await s.stop();
      up.server.closeAllConnections();
      up.server.close();
    }
  });
});

describe('--fetch-derivers from an S3 cache (moto, signatures checked)', () => {
  test('a path with no local .drv is served once the .drv fetched from S3 checks out; Nix substitutes it from S3 through the substituter', async (t) => {
    if (!requireOrSkip(t, 'moto', MOTO_VERSION !== undefined, MOTO_WHY)) return;
    const f = await setUp();
    const moto = await startMoto(['cache']);
    try {
      const leaf = f.leaves[0] as { drv: string; out: string };
      // the cache as `nix copy --derivation` leaves it (the .drv as a store path), then all of it into the bucket
      const local = join(f.dir, 'cache-with-drvs');
      cpSync(f.fileCache, local, { recursive: true });
      const forged = f.leaves[1] as { drv: string; out: string };
      await must('nix', ['copy', '--to', `file://${local}`, '--derivation', leaf.drv, forged.drv], { env: nixEnv() });
      // the other leaf's .drv in the bucket has other bytes than its store path says (a consistent
      // narinfo and NAR of them): the loader must refuse it, as it does for file:// and http
      const text = readFileSync(forged.drv, 'utf8');
      const edited = join(f.dir, 'forged.drv');
      writeFileSync(edited, text.replace('leaf 1', 'leaf 7'));
      assert.notEqual(readFileSync(edited, 'utf8'), text);
      const nar = execFileSync('nix-store', ['--dump', edited], { env: nixEnv() });
      const drvInfo = join(local, `${hashOf(forged.drv)}.narinfo`);
      writeFileSync(
        drvInfo,
        readFileSync(drvInfo, 'utf8')
          .replace(/^URL: .*$/m, 'URL: nar/forged.nar')
          .replace(/^Compression: .*$/m, 'Compression: none')
          .replace(/^FileHash: .*\n/m, '')
          .replace(/^FileSize: .*\n/m, '')
          .replace(/^NarHash: .*$/m, `NarHash: sha256:${nix32Encode(createHash('sha256').update(nar).digest())}`)
          .replace(/^NarSize: .*$/m, `NarSize: ${nar.length}`),
      );
      writeFileSync(join(local, 'nar', 'forged.nar'), nar);
      const creds = { AWS_ACCESS_KEY_ID: moto.key.id, AWS_SECRET_ACCESS_KEY: moto.key.secret, AWS_SHARED_CREDENTIALS_FILE: join(f.dir, 'none') };
      const env = { ...process.env, ...creds };
      const url = `s3://cache?endpoint=${moto.base}&region=us-east-1`;
      // the backend takes its credentials from the environment when it is made
      const saved = Object.fromEntries(Object.keys(creds).map((k) => [k, process.env[k]]));
      setEnv(creds);
      const bucket = S3Cache.fromUrl(url);
      setEnv(saved);
      const files = (d: string): string[] =>
        readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(d, e.name)) : e.isFile() ? [join(d, e.name)] : []));
      for (const file of files(local)) await bucket.put(relative(local, file), readFileSync(file), 'application/octet-stream');
      // a consumer store without the leaf's .drv (it holds the other salt's)
      const root = join(tempDir('serve-s3-consumer-'), 'store');
      await must('nix-instantiate', ['--store', root, ...(f.instantiate[1] as string[])], { env: nixEnv() });
      const off = await startServe(root, f.policy, [url], tempDir('serve-state-'), [], env);
      try {
        const g = await httpGet(`${off.url}/${hashOf(leaf.out)}.narinfo`);
        assert.equal(g.status, 404);
        assert.match(g.body, /no-derivation/);
      } finally {
        await off.stop();
      }
      const s = await startServe(root, f.policy, [url], tempDir('serve-state-'), ['--fetch-derivers'], env);
      try {
        const g = await httpGet(`${s.url}/${hashOf(leaf.out)}.narinfo`);
        assert.equal(g.status, 200, `${g.body}\n${JSON.stringify((await serveStatus(s)).lastRefusals)}\n${s.stderr()}`);
        assert.match(g.body, new RegExp(`^Deriver: ${leaf.drv.slice('/nix/store/'.length)}$`, 'm'));
        // the .drv the substituter fetched is byte for byte the one Nix wrote
        const fetched = join(s.stateDir, 'derivations', leaf.drv);
        assert.deepEqual(readFileSync(fetched), readFileSync(leaf.drv));
        const r = await nixRealise(root, s, [leaf.out], 120_000);
        assert.equal(r.code, 0, `${r.stderr}\n${s.stderr()}\n${JSON.stringify(await serveStatus(s))}`);
        assert.equal(await validIn(root, leaf.out), true);
        assert.ok((await serveStatus(s)).narsServed >= 1);
      } finally {
        await s.stop();
      }
      const s2 = await startServe(root, f.policy, [url], tempDir('serve-state-'), ['--fetch-derivers'], env);
      const g = await httpGet(`${s2.url}/${hashOf(forged.out)}.narinfo`);
      assert.equal(g.status, 404, g.body);
      const refusal = (await serveStatus(s2)).lastRefusals.find((r) => r.path === forged.out);
      assert.deepEqual(refusal?.codes, ['derivation-unreadable'], JSON.stringify(refusal));
      assert.match(refusal?.detail ?? '', new RegExp(hashOf(forged.drv)));
      await s2.stop();
      // the same with a wrong secret key: S3 refuses the reads, the substituter answers 404
      const bad = await startServe(root, f.policy, [url], tempDir('serve-state-'), ['--fetch-derivers'], {
        ...env,
        AWS_SECRET_ACCESS_KEY: `${moto.key.secret}x`,
      });
      try {
        const g = await httpGet(`${bad.url}/${hashOf((f.leaves[1] as { out: string }).out)}.narinfo`);
        assert.equal(g.status, 404, g.body);
        // a 403 is no answer: never read as "no cache names a Deriver"
        assert.match(g.body, /CACHE_ERROR: .*HTTP 403/);
        const st = await serveStatus(bad);
        assert.deepEqual(st.lastRefusals[0]?.codes, ['CACHE_ERROR'], JSON.stringify(st.lastRefusals));
      } finally {
        await bad.stop();
      }
    } finally {
      await moto.stop();
    }
  });
});
