import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { must, nixEnv, ROOT } from './helpers.js';

interface Evaluated {
  options: string[];
  substituters: string[];
  'trusted-public-keys': string[];
  'narinfo-cache-negative-ttl': number;
  extraOptions: string;
  service: Record<string, unknown>;
  failedAssertions: string[];
}

async function evaluate(cfg: unknown, substituters: string[] = []): Promise<Evaluated> {
  const expr = `import ${join(ROOT, 'test/fixtures/nixos-eval-substituter.nix')} { cfg = builtins.fromJSON ${JSON.stringify(JSON.stringify(cfg))}; substituters = builtins.fromJSON ${JSON.stringify(JSON.stringify(substituters))}; }`;
  const r = await must('nix-instantiate', ['--eval', '--strict', '--json', '-E', expr], { env: nixEnv() });
  return JSON.parse(r.stdout) as Evaluated;
}

const base = { enable: true, policy: '/etc/buildtrace/policy.json', caches: ['https://cache.example.org', 'file:///srv/cache'] };

test('services.buildtrace.substituter: Nix substitutes only from it and trusts only its key', async () => {
  const e = await evaluate(base);
  for (const o of ['enable', 'package', 'policy', 'caches', 'listen', 'allowOtherSubstituters']) assert.ok(e.options.includes(o), o);
  assert.deepEqual(e.substituters, ['http://127.0.0.1:37515']);
  assert.deepEqual(e['trusted-public-keys'], []);
  assert.equal(e['narinfo-cache-negative-ttl'], 0);
  assert.match(e.extraOptions, /^!include \/var\/lib\/buildtrace-substituter\/nix\.conf$/m);
  assert.equal(
    e.service['ExecStart'],
    '/buildtrace/bin/trace-verify serve --policy /etc/buildtrace/policy.json --cache https://cache.example.org --cache file:///srv/cache --listen 127.0.0.1:37515 --state-dir /var/lib/buildtrace-substituter',
  );
  assert.equal(e.service['DynamicUser'], true);
  assert.deepEqual(e.service['ReadOnlyPaths'], ['/nix/var/nix/db', '/nix/store']);
  assert.equal(e.service['ProtectSystem'], 'strict');
  assert.deepEqual(e.failedAssertions, []);
});

test('services.buildtrace.substituter: other substituters are an error unless allowed; no caches is an error', async () => {
  const other = await evaluate(base, ['https://cache.nixos.org']);
  assert.equal(other.failedAssertions.length, 1);
  assert.match(other.failedAssertions[0] as string, /also lists https:\/\/cache\.nixos\.org/);
  assert.deepEqual((await evaluate({ ...base, allowOtherSubstituters: true }, ['https://cache.nixos.org'])).failedAssertions, []);
  assert.match((await evaluate({ ...base, caches: [] })).failedAssertions.join('\n'), /caches is empty/);
});
