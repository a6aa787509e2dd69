/**
 * trace-verify serve, measured in one run against its own baselines:
 *  1. substituting a closure of 1,005 paths (bench/fixtures/closure.nix, 4 x 250) into a fresh
 *     store through the substituter vs directly from the same file:// cache (goal ratio <= 1.5),
 *     and vs the same cache as plain files over loopback HTTP (what any HTTP substituter costs Nix);
 *  2. peak RSS of the substituter while Nix substitutes a 1 GiB NAR (goal <= 200 MB);
 *  3. the narinfo of a new top-level derivation over the same closure (warm substituter) vs
 *     the first narinfo of the closure's top (cold) (goal <= 10 %).
 *   node dist/bench/substituter.js [--chunks 4] [--width 250] [--big-mib 1024]
 * The closure, its traces and NARs are made once and reused from .bench/.
 */
import { spawn } from 'node:child_process';
import { copyFileSync, createReadStream, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, get } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { ROOT, must, nixBuildWithHook, nixEnv, run, salt, startDaemon, tempDir } from '../test/helpers.js';

const argv = process.argv.slice(2);
const opt = (n: string, d: number): number => (argv.includes(`--${n}`) ? Number(argv[argv.indexOf(`--${n}`) + 1]) : d);
const CHUNKS = opt('chunks', 4);
const WIDTH = opt('width', 250);
const BIG_MIB = opt('big-mib', 1024);
const dir = join(ROOT, '.bench', `substituter-${CHUNKS}x${WIDTH}-${BIG_MIB}`);
const stampFile = join(dir, 'stamp.json');

interface Stamp {
  salt: string;
  cache: string;
  publicKey: string;
  daemonDir: string;
}

const exprFile = join(dir, 'bench.nix');
function writeExpr(): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    exprFile,
    `{ salt, top2 ? "" }:
let c = import ${join(ROOT, 'bench/fixtures/closure.nix')} { inherit salt; chunks = ${CHUNKS}; width = ${WIDTH}; };
    system = builtins.currentSystem;
in c // {
  big = derivation { name = "big"; inherit system salt; builder = "/bin/sh"; args = [ "-c" "/usr/bin/head -c ${BIG_MIB * 1048576} /dev/zero > $out" ]; };
  top2 = derivation { name = "top2"; inherit system; builder = "/bin/sh"; inherit (c) groups; args = [ "-c" "echo \${salt} \${top2} $groups > $out" ]; };
}
`,
  );
}

async function publish(d: Awaited<ReturnType<typeof startDaemon>>, args: string[], attrs: string[]): Promise<void> {
  const staging = tempDir('bench-staging-');
  for (const a of attrs) {
    process.stderr.write(`building ${a}\n`);
    const r = await nixBuildWithHook(staging, [...args, '-A', a]);
    if (r.code !== 0) throw new Error(r.stderr.slice(-2000));
  }
  for (const f of readdirSync(staging)) copyFileSync(join(staging, f), join(d.spool, f));
  rmSync(staging, { recursive: true, force: true });
  process.stderr.write('tracing and publishing…\n');
  const p = await d.cli(['push', '--wait']);
  if (p.code !== 0) throw new Error(p.stdout + p.stderr);
}

writeExpr();
let stamp: Stamp | undefined = existsSync(stampFile) ? (JSON.parse(readFileSync(stampFile, 'utf8')) as Stamp) : undefined;
const argsOf = (s: string, top2 = ''): string[] => [exprFile, '--argstr', 'salt', s, '--argstr', 'top2', top2];
if (!stamp) {
  const s = salt();
  const cache = join(dir, 'cache');
  const daemonDir = join(dir, 'daemon');
  const d = await startDaemon({ dir: daemonDir, keyName: 'bench-builder', extraConfig: { caches: [{ url: `file://${cache}` }], uploadOutputs: true } });
  await publish(d, argsOf(s), [...Array.from({ length: CHUNKS }, (_, i) => `groups.${i}`), 'top', 'big']);
  await d.stop();
  stamp = { salt: s, cache, publicKey: d.keys.publicKey, daemonDir };
  writeFileSync(stampFile, JSON.stringify(stamp));
}
const st = stamp;
const policy = join(dir, 'policy.json');
writeFileSync(policy, JSON.stringify({ keys: { builder: { publicKey: st.publicKey } }, trust: 'builder' }));

/** Scratch directories of this run (consumer stores of up to 1 GiB each): removed when it exits, however it ends. */
const scratch: string[] = [];
const scratchDir = (prefix: string): string => {
  const d = tempDir(prefix);
  scratch.push(d);
  return d;
};
process.on('exit', () => {
  for (const d of scratch) rmSync(d, { recursive: true, force: true });
});

const seconds = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e9;

async function consumer(attr: string): Promise<{ root: string; drv: string }> {
  const root = join(scratchDir('bench-consumer-'), 'store');
  const drv = (await must('nix-instantiate', ['--store', root, ...argsOf(st.salt), '-A', attr], { env: nixEnv() })).stdout.trim();
  return { root, drv };
}

async function realise(root: string, drv: string, substituter: string, trust: string[]): Promise<number> {
  const t0 = process.hrtime.bigint();
  const r = await run('nix-store', ['--store', root, '--realise', drv, '--max-jobs', '0', '--option', 'substituters', substituter, ...trust], {
    env: nixEnv(),
  });
  if (r.code !== 0) throw new Error(`realise ${drv} from ${substituter}: ${r.stderr.slice(-2000)}`);
  return seconds(t0);
}

interface Serving {
  url: string;
  publicKey: string;
  pid: number;
  stop(): Promise<void>;
}

async function serve(root: string, stateDir = scratchDir('bench-serve-')): Promise<Serving> {
  const child = spawn(
    join(ROOT, 'dist/verify/cli.js'),
    ['serve', '--policy', policy, '--cache', `file://${st.cache}`, '--listen', '127.0.0.1:0', '--state-dir', stateDir, '--store-root', root],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString('utf8');
      if (out.includes('\n')) resolve(out.split('\n')[0] as string);
    });
    child.once('exit', (code) => reject(new Error(`serve exited ${code}`)));
  });
  const { listen, publicKey } = JSON.parse(line) as { listen: string; publicKey: string };
  return {
    url: `http://${listen}`,
    publicKey,
    pid: child.pid as number,
    stop: () =>
      new Promise((r) => {
        child.once('exit', () => r());
        child.kill('SIGTERM');
      }),
  };
}

const rssMb = (pid: number, field: 'VmHWM' | 'VmRSS'): number => {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) / 1024;
};

function narinfoSeconds(url: string, path: string): Promise<number> {
  const t0 = process.hrtime.bigint();
  return new Promise((resolve, reject) =>
    get(`${url}/${path.slice('/nix/store/'.length, '/nix/store/'.length + 32)}.narinfo`, { agent: false }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve(seconds(t0)) : reject(new Error(`narinfo of ${path}: HTTP ${res.statusCode}`))));
    }).on('error', reject),
  );
}

const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

// 1. the closure, directly and through the substituter (fresh stores each)
const direct = await consumer('top');
const directS = await realise(direct.root, direct.drv, `file://${st.cache}`, ['--option', 'require-sigs', 'false']);
// the floor any HTTP substituter has: the same cache served as plain files over loopback HTTP, checked by nothing
const plainServer = createServer({ keepAlive: true }, (req, res) => {
  const file = join(st.cache, decodeURIComponent((req.url ?? '/').split('?')[0] as string));
  const size = statSync(file, { throwIfNoEntry: false });
  if (!file.startsWith(`${st.cache}/`) || !size?.isFile()) {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { 'content-length': size.size });
  createReadStream(file).pipe(res);
});
await new Promise<void>((r) => plainServer.listen(0, '127.0.0.1', r));
const plain = await consumer('top');
const plainS = await realise(plain.root, plain.drv, `http://127.0.0.1:${(plainServer.address() as AddressInfo).port}`, ['--option', 'require-sigs', 'false']);
plainServer.close();
const via = await consumer('top');
const s1 = await serve(via.root);
const viaS = await realise(via.root, via.drv, s1.url, ['--option', 'trusted-public-keys', s1.publicKey]);
const paths = (
  await must(
    'nix-store',
    ['--store', via.root, '-qR', (await must('nix-store', ['--store', via.root, '-q', '--outputs', via.drv], { env: nixEnv() })).stdout.trim()],
    { env: nixEnv() },
  )
).stdout
  .trim()
  .split('\n').length;
await s1.stop();

// 2. peak RSS while Nix substitutes the big NAR
const big = await consumer('big');
const s2 = await serve(big.root);
const rssStart = rssMb(s2.pid, 'VmRSS');
const bigS = await realise(big.root, big.drv, s2.url, ['--option', 'trusted-public-keys', s2.publicKey]);
const peak = rssMb(s2.pid, 'VmHWM');
await s2.stop();

// 3. cold narinfo of top vs a new top-level derivation over the same closure, same substituter
const d = await startDaemon({ dir: st.daemonDir, keyName: 'bench-builder', extraConfig: { caches: [{ url: `file://${st.cache}` }], uploadOutputs: true } });
const tag = salt();
await publish(d, argsOf(st.salt, tag), ['top2']);
await d.stop();
const warm = join(scratchDir('bench-consumer-'), 'store');
const topDrv = (await must('nix-instantiate', ['--store', warm, ...argsOf(st.salt, tag), '-A', 'top'], { env: nixEnv() })).stdout.trim();
const top2Drv = (await must('nix-instantiate', ['--store', warm, ...argsOf(st.salt, tag), '-A', 'top2'], { env: nixEnv() })).stdout.trim();
const outOf = async (drv: string): Promise<string> => (await must('nix-store', ['-q', '--outputs', drv], { env: nixEnv() })).stdout.trim();
const s3 = await serve(warm);
const coldS = await narinfoSeconds(s3.url, await outOf(topDrv));
const againS = await narinfoSeconds(s3.url, await outOf(top2Drv));
await s3.stop();

const result = {
  load_average_at_start: load,
  closure_paths: paths,
  direct_file_cache_seconds: directS,
  via_substituter_seconds: viaS,
  ratio_substituter_vs_direct: viaS / directS,
  plain_http_seconds: plainS,
  ratio_plain_http_vs_direct: plainS / directS,
  ratio_substituter_vs_plain_http: viaS / plainS,
  big_nar_mib: BIG_MIB,
  big_nar_seconds: bigS,
  substituter_rss_at_start_mb: rssStart,
  substituter_peak_rss_mb: peak,
  narinfo_top_cold_seconds: coldS,
  narinfo_new_top_level_warm_seconds: againS,
  ratio_new_top_level_vs_cold: againS / coldS,
};
console.log(JSON.stringify(result, null, 2));
