import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after } from 'node:test';
import { EXIT_INTERNAL, isDecided } from '../src/errors.js';
import { nixAtLeast, parsePathInfoJson, pathInfoJsonArgs, type NixVersion, type PathInfoJson } from '../src/nix/nix-cli-json.js';
import { nixVersion } from '../daemon/store-info.js';

const execFileP = promisify(execFile);

/** Repository root (this file is dist/test/helpers.js). */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The hook as installed (`npm run build` writes it from the template hook/trace-hook). */
export const HOOK = join(ROOT, 'dist/trace-hook');
export const HOOK_TEMPLATE = join(ROOT, 'hook/trace-hook');
export const DAEMON_CLI = join(ROOT, 'dist/daemon/cli.js');
export const VERIFY_CLI = join(ROOT, 'dist/verify/cli.js');
export const FIXTURES = join(ROOT, 'test/fixtures');

export function salt(): string {
  return `${Date.now().toString(36)}${randomBytes(4).toString('hex')}`;
}

export function tempDir(prefix = 'buildtrace-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** NIX_CONFIG for root builds without sandbox, substituters or build users. */
export function nixConfig(extra: Record<string, string> = {}): string {
  const base: Record<string, string> = {
    sandbox: 'false',
    'build-users-group': '',
    substituters: '',
    'experimental-features': 'nix-command ca-derivations',
    ...extra,
  };
  return Object.entries(base)
    .map(([k, v]) => `${k} = ${v}`)
    .join('\n');
}

export function nixEnv(extra: Record<string, string> = {}, env: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...process.env, NIX_CONFIG: nixConfig(extra), ...env };
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a command. An internal error (exit 70, see src/errors.ts) rejects: it is a bug, never a
 * refusal, whatever exit code the test expected. `runAllowingInternal` is for the one test of
 * that exit status itself.
 */
export async function run(cmd: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv; input?: string; cwd?: string } = {}): Promise<RunResult> {
  const r = await runAllowingInternal(cmd, args, opts);
  // a stack trace: Node died before our error handling (an import that fails exits 1)
  if (r.code === EXIT_INTERNAL || r.stderr.includes('internal error (a bug') || /^\s+at .+:\d+:\d+\)?$/m.test(r.stderr)) {
    throw new Error(`${cmd} ${args.join(' ')}: internal error (exit ${r.code}):\n${r.stderr}`);
  }
  return r;
}

export function runAllowingInternal(
  cmd: string,
  args: readonly string[],
  opts: { env?: NodeJS.ProcessEnv; input?: string; cwd?: string } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', reject);
    // a child that exits without reading its stdin must not crash the test run (EPIPE)
    child.stdin.on('error', () => {});
    child.on('close', (code) => resolve({ code: code ?? -1, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }));
    child.stdin.end(opts.input ?? '');
  });
}

export async function must(cmd: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv; input?: string; cwd?: string } = {}): Promise<RunResult> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}:\n${r.stderr}`);
  return r;
}

/** A fresh Nix key pair made by Nix itself. */
export async function nixKeyPair(dir: string, name: string): Promise<{ secretFile: string; publicFile: string; publicKey: string }> {
  const env = nixEnv();
  const sec = (await must('nix', ['key', 'generate-secret', '--key-name', name], { env })).stdout;
  const secretFile = join(dir, `${name}.sec`);
  writeFileSync(secretFile, sec, { mode: 0o600 });
  const pub = (await must('nix', ['key', 'convert-secret-to-public'], { env, input: sec })).stdout.trim();
  const publicFile = join(dir, `${name}.pub`);
  writeFileSync(publicFile, `${pub}\n`);
  return { secretFile, publicFile, publicKey: pub };
}

/** The Nix these tests run against (`nix --version`, asked once). */
export function nixVersionNow(): Promise<NixVersion> {
  return nixVersion('nix');
}

/**
 * Whether this Nix runs the post-build hook for the unresolved .drv of a build it resolved
 * (measured: 2.8 and 2.26 do, after the resolved one; 2.34 reports only the resolved one).
 */
export async function hookReportsUnresolved(): Promise<boolean> {
  const v = await nixVersionNow();
  return v.flavor === 'nix' && !nixAtLeast(v, 2, 34);
}

/** `nix path-info --json` in whichever shape this Nix prints (array, keyed object, versioned). */
export async function pathInfo(paths: readonly string[], extra: readonly string[] = []): Promise<Map<string, PathInfoJson>> {
  const r = await must('nix', ['path-info', ...pathInfoJsonArgs(await nixVersionNow()), ...extra, ...paths], { env: nixEnv() });
  return parsePathInfoJson(r.stdout);
}

/**
 * `nix hash to-<format>` on Nix before 2.19, `nix hash convert` after (the old subcommands
 * warn that they are deprecated from 2.19 on).
 */
export async function nixHashConvert(to: 'base16' | 'nix32' | 'sri', algo: 'sha256' | 'sha1', hashes: readonly string[]): Promise<string[]> {
  const v = await nixVersionNow();
  const args =
    v.flavor === 'lix' || nixAtLeast(v, 2, 19)
      ? ['hash', 'convert', '--hash-algo', algo, '--to', to, ...hashes]
      : ['hash', `to-${to === 'nix32' ? 'base32' : to}`, '--type', algo, ...hashes];
  const r = await must('nix', args, { env: nixEnv() });
  return r.stdout.trim().split('\n');
}

/** SRI or sha256:<nix32> → lowercase hex, via Nix itself. */
export async function sriToHex(sri: string): Promise<string> {
  const [hex] = await nixHashConvert('base16', 'sha256', [sri]);
  return hex ?? '';
}

export function sha256HexOf(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export interface DaemonHandle {
  dir: string;
  spool: string;
  socket: string;
  config: string;
  dbFile: string;
  keys: { secretFile: string; publicFile: string; publicKey: string };
  child: ChildProcess;
  stderr: () => string;
  cli: (args: readonly string[]) => Promise<RunResult>;
  stop: () => Promise<number | null>;
  kill9: () => Promise<void>;
  restart: () => Promise<void>;
}

/** Daemons started by startDaemon and not yet exited. */
const liveDaemons = new Set<ChildProcess>();
// A test that fails before stopping its daemon must not keep its test file running for ever
// (the runner waits for the file's process, which waits for the daemon): kill what is left.
if (process.env['NODE_TEST_CONTEXT'] !== undefined) {
  after(() => {
    for (const c of liveDaemons) c.kill('SIGKILL');
  });
}

export async function startDaemon(
  opts: { keyName?: string; batchSize?: number; dir?: string; extraConfig?: Record<string, unknown>; env?: NodeJS.ProcessEnv } = {},
): Promise<DaemonHandle> {
  const dir = opts.dir ?? tempDir('buildtrace-daemon-');
  const spool = join(dir, 'spool');
  mkdirSync(spool, { recursive: true });
  const keyName = opts.keyName ?? 'builder-test-1';
  const keys = existsSync(join(dir, `${keyName}.sec`))
    ? { secretFile: join(dir, `${keyName}.sec`), publicFile: join(dir, `${keyName}.pub`), publicKey: readFileSync(join(dir, `${keyName}.pub`), 'utf8').trim() }
    : await nixKeyPair(dir, keyName);
  chmodSync(keys.secretFile, 0o600);
  const socket = join(dir, 'daemon.sock');
  const config = join(dir, 'config.json');
  writeFileSync(
    config,
    JSON.stringify({
      signingKeyFile: keys.secretFile,
      spoolDir: spool,
      stateDir: join(dir, 'state'),
      socket,
      batchSize: opts.batchSize ?? 500,
      ...opts.extraConfig,
    }),
  );
  let errText = '';
  const handle: DaemonHandle = {
    dir,
    spool,
    socket,
    config,
    dbFile: join(dir, 'state', 'buildtrace.db'),
    keys,
    child: undefined as unknown as ChildProcess,
    stderr: () => errText,
    cli: (args) => run(DAEMON_CLI, [...args, '--socket', socket]),
    stop: async () => {
      const c = handle.child;
      if (c.exitCode !== null) return c.exitCode;
      const done = new Promise<number | null>((r) => c.once('exit', (code) => r(code)));
      c.kill('SIGTERM');
      return done;
    },
    kill9: async () => {
      const c = handle.child;
      const done = new Promise<void>((r) => c.once('exit', () => r()));
      c.kill('SIGKILL');
      await done;
    },
    restart: async () => {
      await launch();
    },
  };
  const launch = async (): Promise<void> => {
    // the bin itself, so its shebang's V8 flags apply as they do for users
    const child = spawn(DAEMON_CLI, ['run', '--config', config], { stdio: ['ignore', 'ignore', 'pipe'], ...(opts.env ? { env: opts.env } : {}) });
    child.stderr?.on('data', (c: Buffer) => (errText += c.toString('utf8')));
    handle.child = child;
    liveDaemons.add(child);
    child.once('exit', () => liveDaemons.delete(child));
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`trace-daemon exited ${child.exitCode}: ${errText}`);
      const r = await run(DAEMON_CLI, ['status', '--json', '--socket', socket]);
      if (r.code === 0) return;
      if (Date.now() > deadline) throw new Error(`trace-daemon did not come up: ${errText}`);
      await new Promise((res) => setTimeout(res, 100));
    }
  };
  await launch();
  return handle;
}

/** nix-build with trace-hook as post-build-hook, spooling into `spool`. */
export function nixBuildWithHook(spool: string, args: readonly string[]): Promise<RunResult> {
  return run('nix-build', ['--no-out-link', ...args], { env: nixEnv({ 'post-build-hook': HOOK }, { BUILDTRACE_SPOOL: spool }) });
}

/** Sets (or, for undefined, removes) environment variables of this process: credentials for a test, and restoring them. */
export function setEnv(vals: Record<string, string | undefined>): void {
  for (const [k, v] of Object.entries(vals)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
}

export async function waitFor(pred: () => Promise<boolean> | boolean, timeoutMs = 30_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export { execFileP };

/** A parser may reject input only with its own error type, and never with an internal error. */
export function onlyOwnErrors(f: () => unknown): void {
  try {
    f();
  } catch (err) {
    if (!isDecided(err)) throw err;
  }
}

/**
 * A refusal as a test must pin it: the exit code and the failure code or message expected
 * (stderr and stdout are searched, so `--json` codes and messages both match).
 */
export function assertRefused(r: RunResult, exit: 1 | 2 | 3, expect: RegExp | string, what = ''): void {
  const all = `${r.stdout}\n${r.stderr}`;
  if (r.code !== exit) throw new Error(`${what}: exit ${r.code}, expected ${exit}\n${all.slice(0, 4000)}`);
  const hit = typeof expect === 'string' ? all.includes(expect) : expect.test(all);
  if (!hit) throw new Error(`${what}: exit ${exit} as expected, but not for ${String(expect)}\n${all.slice(0, 4000)}`);
}

/** A bundle line with one character of its signature changed (still valid base64). */
export function flipSignature(line: string): string {
  return line.replace(/"sig":"(.)/, (_, c: string) => `"sig":"${c === 'A' ? 'B' : 'A'}`);
}

/**
 * Skips a test whose tool is not installed here (reported by scripts/run-tests.sh and .ci/run),
 * unless this machine is one where it must be (BUILDTRACE_REQUIRE lists it, as the CI chroots
 * do): then the missing tool fails the test. Returns whether to go on.
 */
export function requireOrSkip(t: { skip: (why: string) => void }, tool: string, present: boolean, why: string): boolean {
  if (present) return true;
  assertNotRequired(tool, why);
  t.skip(`${tool} is not installed here: ${why}`);
  return false;
}

/** Throws when `tool` is missing on a machine that must have it (BUILDTRACE_REQUIRE lists it). */
function assertNotRequired(tool: string, why: string): void {
  if ((process.env['BUILDTRACE_REQUIRE'] ?? '').split(/[\s,]+/).includes(tool)) {
    throw new Error(`${tool} is required on this machine (BUILDTRACE_REQUIRE) but missing: ${why}`);
  }
}

/**
 * Puts `path` into the store as a substitute from a file:// binary cache (made in `cacheDir`)
 * whose narinfo says `Deriver: deriver`: what a hostile cache (its narinfo key trusted by Nix,
 * here --no-check-sigs) can make Nix record as a path's deriver.
 */
export async function substituteWithDeriver(path: string, deriver: string, cacheDir: string): Promise<void> {
  const env = nixEnv();
  await must('nix', ['copy', '--to', `file://${cacheDir}`, path], { env });
  const narinfo = join(cacheDir, `${basename(path).slice(0, 32)}.narinfo`);
  const text = readFileSync(narinfo, 'utf8').replace(/^Deriver: .*\n/m, '');
  writeFileSync(narinfo, `${text}Deriver: ${basename(deriver)}\n`);
  await must('nix-store', ['--delete', path], { env });
  await must('nix', ['copy', '--from', `file://${cacheDir}`, '--no-check-sigs', path], { env });
  assert.equal((await must('nix-store', ['--query', '--deriver', path], { env })).stdout.trim(), deriver);
}
