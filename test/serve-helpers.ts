/** `trace-verify serve` as the substituter tests run it: a child process, its status, plain GETs. */
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { get } from 'node:http';
import { after } from 'node:test';
import { nixEnv, run, tempDir, VERIFY_CLI, type RunResult } from './helpers.js';

export interface Serve {
  readonly url: string;
  readonly publicKey: string;
  readonly stateDir: string;
  readonly child: ChildProcess;
  stderr(): string;
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
if (process.env['NODE_TEST_CONTEXT'] !== undefined) {
  after(() => {
    for (const c of live) c.kill('SIGKILL');
  });
}

/** Each thread's kernel wait and, where gdb is installed, every thread's stack: why a process hangs. */
function threadsOf(pid: number | undefined): string {
  if (pid === undefined) return '';
  const lines: string[] = [];
  try {
    for (const t of readdirSync(`/proc/${pid}/task`)) {
      const at = (f: string): string => readFileSync(`/proc/${pid}/task/${t}/${f}`, 'utf8').trim();
      lines.push(`thread ${t} ${at('comm')}: ${at('wchan')}`);
    }
    lines.push(
      execFileSync('gdb', ['-batch', '-p', String(pid), '-ex', 'thread apply all bt 12'], { timeout: 30_000, stdio: ['ignore', 'pipe', 'ignore'] }).toString(),
    );
  } catch (e) {
    lines.push(String(e));
  }
  return lines.join('\n');
}

export async function startServe(
  root: string,
  policy: string,
  caches: readonly string[],
  stateDir = tempDir('serve-state-'),
  extra: readonly string[] = [],
  env: NodeJS.ProcessEnv = process.env,
): Promise<Serve> {
  const child = spawn(
    VERIFY_CLI,
    ['serve', '--policy', policy, ...caches.flatMap((c) => ['--cache', c]), '--listen', '127.0.0.1:0', '--state-dir', stateDir, '--store-root', root, ...extra],
    { stdio: ['ignore', 'pipe', 'pipe'], env },
  );
  live.add(child);
  let err = '';
  child.stderr?.on('data', (c: Buffer) => (err += c.toString('utf8')));
  let started = false;
  const first = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString('utf8');
      if (out.includes('\n')) resolve(out.split('\n')[0] as string);
    });
    child.once('exit', (code, signal) => reject(new Error(`serve exited ${code ?? signal}: ${err}`)));
    // a start that never ends (seen twice in hundreds, not reproduced: the main thread waiting on
    // a futex before the signing key was written) fails the test with what the threads were doing
    const slow = setTimeout(() => {
      if (started) return;
      reject(new Error(`serve did not start within 60 s: ${err}\n${threadsOf(child.pid)}`));
      child.kill('SIGKILL');
    }, 60_000);
    child.stdout?.once('data', () => clearTimeout(slow));
    child.once('exit', () => clearTimeout(slow));
  });
  started = true;
  const { listen, publicKey } = JSON.parse(first) as { listen: string; publicKey: string };
  return {
    url: `http://${listen}`,
    publicKey,
    stateDir,
    child,
    stderr: () => err,
    stop: async () => {
      if (!live.has(child)) return; // stopped before
      // exitCode stays null for a child killed by a signal (an abort, the OOM killer): 'exit' has fired already
      if (child.exitCode !== null || child.signalCode !== null) {
        live.delete(child);
        assert.fail(`serve had already ended (exit ${child.exitCode}, signal ${child.signalCode}): ${err.slice(-2000)}`);
      }
      const done = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      // a serve that does not end on SIGTERM fails the test (and is killed) instead of hanging it
      let late = false;
      const killer = setTimeout(() => {
        late = true;
        child.kill('SIGKILL');
      }, 15_000);
      await done;
      clearTimeout(killer);
      live.delete(child);
      assert.ok(!late, `serve did not exit within 15 s of SIGTERM: ${err.slice(-2000)}`);
    },
  };
}

export function httpGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    get(url, { agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    }).on('error', reject);
  });
}

export interface ServeStatus {
  served: number;
  servedFromWorld: number;
  refused: number;
  narsCutOff: number;
  narsServed: number;
  verdictsComputed: number;
  verdictsReused: number;
  lastRefusals: { path: string; drv: string | null; codes: string[]; detail: string }[];
}

export async function serveStatus(s: Serve): Promise<ServeStatus> {
  const r = await run(VERIFY_CLI, ['serve', 'status', '--state-dir', s.stateDir, '--json']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as ServeStatus;
}

export const hashOf = (p: string): string => p.slice('/nix/store/'.length, '/nix/store/'.length + 32);

/**
 * Stock Nix realises `drvs` in the store under `root`, substituting from `s` only and building
 * nothing; killed after `killAfterMs` (a hung Nix fails the test instead of hanging it).
 */
export async function nixRealise(root: string, s: Serve, drvs: readonly string[], killAfterMs = 300_000): Promise<RunResult & { ms: number }> {
  const t0 = Date.now();
  const child = spawn(
    'nix-store',
    [
      '--store',
      root,
      '--realise',
      ...drvs,
      '--max-jobs',
      '0',
      '--option',
      'substituters',
      s.url,
      '--option',
      'trusted-public-keys',
      s.publicKey,
      '--option',
      'narinfo-cache-negative-ttl',
      '0',
    ],
    { env: nixEnv(), stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (c: Buffer) => out.push(c));
  child.stderr.on('data', (c: Buffer) => err.push(c));
  const killer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
  const code = await new Promise<number>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c) => resolve(c ?? -1));
  });
  clearTimeout(killer);
  const ms = Date.now() - t0;
  const stderr = Buffer.concat(err).toString('utf8');
  assert.ok(ms < killAfterMs, `nix-store --realise hung: killed after ${ms} ms\n${stderr}`);
  return { code, stdout: Buffer.concat(out).toString('utf8'), stderr, ms };
}
