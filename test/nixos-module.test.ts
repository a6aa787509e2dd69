// ci: nix (runs on every Nix: the host and the trixie and sid chroots; see scripts/run-tests.sh)
import assert from 'node:assert/strict';
import { chmodSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { validateAgainst } from '../src/util/schema.js';
import type { JsonValue } from '../src/util/strict-json.js';
import { must, nixEnv, ROOT, run, tempDir } from './helpers.js';

const p0 = (d: string, n: string): string => (d === '' ? n : `${d}/${n}`);
const nixFiles = (): string[] => {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const n of readdirSync(join(ROOT, d), { withFileTypes: true })) {
      // test/vectors: vendored third-party files (the Nixpkgs lib snapshot is evaluated below)
      if (n.name === 'node_modules' || n.name === 'dist' || n.name.startsWith('.') || p0(d, n.name) === 'test/vectors') continue;
      const p = p0(d, n.name);
      if (n.isDirectory()) walk(p);
      else if (n.name.endsWith('.nix')) out.push(p);
    }
  };
  walk('');
  return out;
};

const baseCfg = {
  enable: true,
  signingKeyFile: '/var/lib/buildtrace-keys/builder.sec',
  caches: ['file:///srv/cache', 's3://nix-cache?endpoint=https://garage.example.org&region=garage'],
  uploadOutputs: true,
  localOnly: false,
  chainPostBuildHook: null,
  spoolDir: '/var/spool/buildtrace',
  tee: { provider: 'none', perTrace: false, allowSimulated: false },
  settings: { batchSize: 200, storeInfo: 'auto' },
};

interface Evaluated {
  enabled: boolean;
  options: string[];
  values: Record<string, JsonValue>;
  daemonConfig: JsonValue;
  serviceConfig: Record<string, unknown>;
  hookText: string;
  tmpfiles: string[];
  services: string[];
  failedAssertions: string[];
  package: Record<string, unknown>;
}

/** nix-instantiate over test/fixtures/nixos-eval.nix: the module under the vendored Nixpkgs lib's evalModules. */
function evalArgs(cfg: unknown, extra: unknown = {}): string[] {
  const json = (v: unknown): string => `builtins.fromJSON ${JSON.stringify(JSON.stringify(v))}`;
  const expr = `import ${join(ROOT, 'test/fixtures/nixos-eval.nix')} { cfg = ${json(cfg)}; extra = ${json(extra)}; }`;
  return ['--eval', '--strict', '--json', '--read-write-mode', '-E', expr];
}

async function evaluate(cfg: unknown, extra: unknown = {}): Promise<Evaluated> {
  const r = await must('nix-instantiate', evalArgs(cfg, extra), { env: nixEnv() });
  return JSON.parse(r.stdout) as Evaluated;
}

test('every .nix file parses', async () => {
  const files = nixFiles();
  for (const f of ['flake.nix', 'package.nix', 'nixos-module/default.nix', 'nixos-module/test.nix']) assert.ok(files.includes(f), f);
  for (const f of files) {
    const r = await run('nix-instantiate', ['--parse', join(ROOT, f)], { env: nixEnv() });
    assert.equal(r.code, 0, `${f}: ${r.stderr}`);
  }
});

test('the module evaluates; the daemon configuration it generates validates against the schema', async () => {
  const e = await evaluate(baseCfg);
  assert.equal(e.enabled, true);
  for (const o of ['enable', 'package', 'settings', 'signingKeyFile', 'tee', 'caches', 'uploadOutputs', 'chainPostBuildHook'])
    assert.ok(e.options.includes(o), o);
  validateAgainst('daemon-config.schema.json', e.daemonConfig, 'generated config', 'CONFIG_INVALID');
  const dc = e.daemonConfig as Record<string, unknown>;
  assert.equal(dc['signingKeyFile'], '/run/credentials/buildtrace.service/signing-key');
  assert.equal(dc['batchSize'], 200);
  assert.deepEqual(e.serviceConfig['LoadCredential'], ['signing-key:/var/lib/buildtrace-keys/builder.sec']);
  assert.equal(e.serviceConfig['ProtectSystem'], 'strict');
  assert.equal(e.serviceConfig['NoNewPrivileges'], true);
  assert.equal(e.serviceConfig['MemoryDenyWriteExecute'], false, 'V8 needs W+X pages');
  assert.equal(e.serviceConfig['ProtectKernelTunables'], true, 'no TEE: /sys stays read-only');
  assert.ok((e.serviceConfig['ReadWritePaths'] as string[]).includes('-/srv/cache'));
  assert.deepEqual(e.tmpfiles, ['d /var/spool/buildtrace 0700 root root - -']);
  assert.deepEqual(e.failedAssertions, []);
});

test('assertions explain what is wrong', async () => {
  const inStore = await evaluate({ ...baseCfg, signingKeyFile: '/nix/store/00000000000000000000000000000000-key.sec' });
  assert.equal(inStore.failedAssertions.length, 1);
  assert.match(inStore.failedAssertions[0] as string, /inside the Nix store/);
  const noCache = await evaluate({ ...baseCfg, caches: [] });
  assert.match(noCache.failedAssertions[0] as string, /caches is empty/);
  assert.deepEqual((await evaluate({ ...baseCfg, caches: [], localOnly: true })).failedAssertions, []);
  const sim = await evaluate({ ...baseCfg, signingKeyFile: null, tee: { provider: 'simulated', perTrace: false, allowSimulated: false } });
  assert.match(sim.failedAssertions[0] as string, /proves nothing about hardware/);
  const noKey = await evaluate({ ...baseCfg, signingKeyFile: null });
  assert.match(noKey.failedAssertions[0] as string, /signingKeyFile is not set/);
});

test('TEE mode: no key file (the key is born in the guest), no remote builders', async () => {
  const tee = { ...baseCfg, signingKeyFile: null, tee: { provider: 'sev-snp', perTrace: false, allowSimulated: false } };
  const e = await evaluate(tee);
  assert.deepEqual(e.failedAssertions, []);
  validateAgainst('daemon-config.schema.json', e.daemonConfig, 'generated config', 'CONFIG_INVALID');
  assert.equal((e.daemonConfig as Record<string, unknown>)['signingKeyFile'], undefined);
  assert.deepEqual(e.serviceConfig['LoadCredential'], []);
  assert.equal(e.serviceConfig['ProtectKernelTunables'], false, 'configfs-tsm lives under /sys');
  assert.ok((e.serviceConfig['ReadWritePaths'] as string[]).includes('-/sys/kernel/config/tsm/report'));
  const withKey = await evaluate({ ...tee, signingKeyFile: '/var/lib/buildtrace-keys/builder.sec' });
  assert.match(withKey.failedAssertions.join('\n'), /In TEE mode the\s+daemon generates its signing key inside the confidential guest/);
});

/** The module's hook, pointed at this checkout's built trace-hook instead of the package's. */
function runnableHook(text: string, dir: string): string {
  const hook = join(dir, 'hook');
  writeFileSync(hook, text.replace(/\S*\/bin\/trace-hook/, join(ROOT, 'dist/trace-hook')));
  chmodSync(hook, 0o755);
  return hook;
}

test('the generated hook chains a previous hook, keeps its status and still records the build', async () => {
  const dir = tempDir();
  const prev = join(dir, 'prev-hook');
  writeFileSync(prev, '#!/bin/sh\necho previous ran >&2\nexit 3\n');
  chmodSync(prev, 0o755);
  const spool = join(dir, 'spool');
  (await import('node:fs')).mkdirSync(spool);
  const e = await evaluate({ ...baseCfg, chainPostBuildHook: prev, spoolDir: spool });
  // the module points at the packaged hook; run it against the repository's hook instead
  // runs under the package's shell (the stand-in package says busybox's)
  assert.match(e.hookText, /^#!\/bin\/busybox sh\n/);
  const hook = runnableHook(e.hookText, dir);
  const r = await run(hook, [], { env: { PATH: '/usr/bin:/bin', DRV_PATH: '/nix/store/7kf39nh5dgw2airf6njpy8q6rsnyb4kb-b.drv', OUT_PATHS: '' } });
  assert.equal(r.code, 3, "the previous hook's status is kept");
  assert.match(r.stderr, /previous ran/);
  assert.equal(readdirSync(spool).length, 1, 'the build is recorded anyway');
});

test('without a hook to chain, the generated hook execs trace-hook', async () => {
  const dir = tempDir();
  const spool = join(dir, 'spool');
  (await import('node:fs')).mkdirSync(spool);
  const e = await evaluate({ ...baseCfg, spoolDir: spool });
  assert.match(e.hookText, /^#!\/bin\/busybox sh\nexport BUILDTRACE_SPOOL=\S+\nexec \S+\/bin\/trace-hook\n$/);
  const r = await run(runnableHook(e.hookText, dir), [], { env: { DRV_PATH: '/nix/store/7kf39nh5dgw2airf6njpy8q6rsnyb4kb-b.drv', OUT_PATHS: '' } });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(readdirSync(spool).length, 1);
});

test('the package expression evaluates: name and version from package.json, hook paths fixed at build time', async () => {
  const e = await evaluate(baseCfg);
  const pkgJson = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string };
  assert.equal(e.package['pname'], pkgJson.name);
  assert.equal(e.package['version'], pkgJson.version);
  assert.equal(e.package['npmBuildScript'], 'build');
  assert.equal(e.package['nodejs'], 'nodejs_22');
  assert.equal(e.package['npmDeps'], 'npm-deps', 'dependencies come from package-lock.json (importNpmLock)');
  // the installed hook is rebuilt under a static busybox whose shell runs applets itself
  assert.match(
    String(e.package['postInstall']),
    /scripts\/build-hook\.sh \S+\/dist\/trace-hook \\\s+\/static-busybox-standalone\/bin\/busybox \/var\/spool\/buildtrace/,
  );
  assert.deepEqual(e.package['passthru'], { hookShell: '/static-busybox-standalone/bin/busybox sh' }, "the module's wrapper runs under the same shell");
  const hook = readFileSync(join(ROOT, 'hook/trace-hook'), 'utf8');
  assert.ok(hook.includes('@spool@') && hook.includes('@mv@'), 'the placeholders build-hook.sh substitutes exist');
});

test('real module system: defaults fill what a user leaves out, and a disabled module defines nothing (mkIf)', async () => {
  const e = await evaluate({ enable: true, signingKeyFile: '/var/lib/k.sec', caches: ['file:///srv/c'] });
  assert.deepEqual(e.failedAssertions, []);
  assert.equal(e.values['spoolDir'], '/var/spool/buildtrace');
  assert.equal(e.values['uploadOutputs'], false);
  assert.deepEqual(e.values['settings'], { batchSize: 500, storeInfo: 'auto' });
  assert.deepEqual(e.values['tee'], { provider: 'none', perTrace: false, allowSimulated: false });
  const dc = e.daemonConfig as Record<string, unknown>;
  assert.equal(dc['batchSize'], 500);
  assert.deepEqual(e.tmpfiles, ['d /var/spool/buildtrace 0700 root root - -']);
  // settings is freeform JSON: further daemon settings pass through, typed ones are checked
  const free = await evaluate({ enable: true, signingKeyFile: '/var/lib/k.sec', caches: ['file:///srv/c'], settings: { retryMaxSeconds: 60 } });
  assert.equal((free.daemonConfig as Record<string, unknown>)['retryMaxSeconds'], 60);
  const off = await evaluate({ enable: false });
  assert.equal(off.enabled, false);
  assert.deepEqual(off.services, []);
  assert.deepEqual(off.tmpfiles, []);
  assert.equal(off.hookText, null);
  assert.deepEqual(off.failedAssertions, [], 'mkIf false: not even the assertions are defined');
});

test("real module system: another module's definitions merge with the module's (lists concatenate, mkForce wins, a clash is an error)", async () => {
  const cfg = { enable: true, signingKeyFile: '/var/lib/k.sec', caches: ['file:///srv/c'] };
  const e = await evaluate(cfg, { systemd: { tmpfiles: { rules: ['d /srv/c 0755 root root - -'] }, services: { buildtrace: { after: ['garage.service'] } } } });
  assert.deepEqual([...e.tmpfiles].sort(), ['d /srv/c 0755 root root - -', 'd /var/spool/buildtrace 0700 root root - -']);
  assert.deepEqual(e.services, ['buildtrace']);
  // two plain definitions of one single-valued option: the module system refuses, naming both
  const clash = await run('nix-instantiate', evalArgs(cfg, { systemd: { services: { buildtrace: { serviceConfig: { Restart: 'always' } } } } }), {
    env: nixEnv(),
  });
  assert.equal(clash.code, 1, clash.stdout);
  assert.match(clash.stderr, /The option `systemd\.services\.buildtrace\.serviceConfig\.Restart' has conflicting definition values/);
  const forced = await evaluate(cfg, {
    systemd: { services: { buildtrace: { serviceConfig: { Restart: { _type: 'override', priority: 50, content: 'always' } } } } },
  });
  assert.equal(forced.serviceConfig['Restart'], 'always', 'mkForce (priority 50) wins over the module');
});

test('real module system: a value of the wrong type is caught, naming the option and the type', async () => {
  const base = { enable: true, signingKeyFile: '/var/lib/k.sec', caches: ['file:///srv/c'] };
  const cases: [unknown, RegExp][] = [
    [
      { ...base, settings: { batchSize: 'lots' } },
      /A definition for option `services\.buildtrace\.settings\.batchSize' is not of type `integer between 1 and 10000 \(both inclusive\)'/,
    ],
    [{ ...base, settings: { batchSize: 0 } }, /services\.buildtrace\.settings\.batchSize' is not of type `integer between 1 and 10000/],
    [
      { ...base, caches: ['ftp://old.example'] },
      /A definition for option `services\.buildtrace\.caches\."?\[definition 1-entry 1\]"?' is not of type `string matching the pattern \(file\|https\?\|s3\):\/\/\.\*'/,
    ],
    [
      { ...base, tee: { provider: 'sgx' } },
      /A definition for option `services\.buildtrace\.tee\.provider' is not of type `one of "none", "sev-snp", "tdx", "snpguest", "simulated"'/,
    ],
    [{ ...base, uploadOutputs: 'yes' }, /A definition for option `services\.buildtrace\.uploadOutputs' is not of type `boolean'/],
    [{ ...base, signingKeyFile: 'relative/k.sec' }, /A definition for option `services\.buildtrace\.signingKeyFile' is not of type `null or absolute path'/],
    [{ ...base, noSuchOption: true }, /The option `services\.buildtrace\.noSuchOption' does not exist/],
  ];
  for (const [cfg, message] of cases) {
    const r = await run('nix-instantiate', evalArgs(cfg), { env: nixEnv() });
    assert.equal(r.code, 1, JSON.stringify(cfg));
    assert.match(r.stderr, message, JSON.stringify(cfg));
  }
});
