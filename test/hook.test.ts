// ci: nix (runs on every Nix: the host and the trixie and sid chroots; see scripts/run-tests.sh)
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, readdirSync, symlinkSync, existsSync, chmodSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { HOOK, HOOK_TEMPLATE, ROOT, run, tempDir } from './helpers.js';

const DRV = '/nix/store/7kf39nh5dgw2airf6njpy8q6rsnyb4kb-b.drv';
const OUT = '/nix/store/wgvxv6qv2yhi7p0my93b184b8s79738q-b';

// Both forms: the installed hook (under busybox's shell when this machine has it) and the
// template under /bin/sh with /bin/mv, as it runs where there is no busybox.
const VARIANTS = [
  { name: 'built', argv0: HOOK },
  { name: 'template', argv0: `/bin/sh ${HOOK_TEMPLATE}` },
] as const;

function hookWith(argv0: string, env: Record<string, string>, pre = ''): ReturnType<typeof run> {
  // A clean environment: the hook must not depend on anything else.
  return run('/bin/sh', ['-c', `${pre}exec ${argv0}`], { env: { PATH: '/usr/bin:/bin', ...env } });
}

for (const { name, argv0 } of VARIANTS) {
  const hook = (env: Record<string, string>, pre = ''): ReturnType<typeof run> => hookWith(argv0, env, pre);

  test(`${name}: writes one well-formed record atomically`, async () => {
    const spool = tempDir();
    const r = await hook({ DRV_PATH: DRV, OUT_PATHS: `${OUT} ${OUT}-dev`, BUILDTRACE_SPOOL: spool });
    assert.equal(r.code, 0);
    assert.equal(r.stderr, '');
    const files = readdirSync(spool);
    assert.equal(files.length, 1);
    assert.match(files[0] as string, /^7kf39nh5dgw2airf6njpy8q6rsnyb4kb-\d+\.json$/);
    assert.deepEqual(JSON.parse(readFileSync(join(spool, files[0] as string), 'utf8')), { v: 1, drv: DRV, outs: [OUT, `${OUT}-dev`] });
  });

  test(`${name}: copes with an empty or missing OUT_PATHS`, async () => {
    const spool = tempDir();
    for (const env of [{ OUT_PATHS: '' }, {}]) {
      const r = await hook({ DRV_PATH: DRV, BUILDTRACE_SPOOL: spool, ...env });
      assert.equal(r.code, 0);
    }
    // one record per call (the hook's file name carries its pid), each with no outputs
    const records = readdirSync(spool);
    assert.equal(records.length, 2, records.join(', '));
    for (const f of records) assert.deepEqual(JSON.parse(readFileSync(join(spool, f), 'utf8')), { v: 1, drv: DRV, outs: [] });
  });

  test(`${name}: refuses anything that is not a store path, and still exits 0`, async () => {
    const spool = tempDir();
    const cases: Record<string, string>[] = [
      { DRV_PATH: '' },
      { DRV_PATH: '/etc/passwd' },
      { DRV_PATH: '/nix/store/../../etc/shadow.drv' },
      { DRV_PATH: '/nix/store/7kf39nh5dgw2airf6njpy8q6rsnyb4kb-b.drv/x.drv' },
      { DRV_PATH: '/nix/store/7kf39nh5dgw2airf6njpy8q6rsnyb4kb-b' },
      { DRV_PATH: '/nix/store/7kf39nh5dgw2airf6njpy8q6rsnyb4ke-b.drv' },
      { DRV_PATH: '/nix/store/7kf39nh5dgw2airf6njpy8q6rsnyb4kb-b".drv' },
      { DRV_PATH: '/nix/store/7kf39nh5dgw2airf6njpy8q6rsnyb4kb-$(reboot).drv' },
      { DRV_PATH: DRV, OUT_PATHS: `${OUT} /tmp/evil` },
      { DRV_PATH: DRV, OUT_PATHS: `${OUT}","evil":"1` },
      { DRV_PATH: DRV, OUT_PATHS: '*' },
    ];
    for (const env of cases) {
      const r = await hook({ ...env, BUILDTRACE_SPOOL: spool });
      assert.equal(r.code, 0, JSON.stringify(env));
      assert.match(r.stderr, /trace-hook: .*not a (store path|derivation); build not traced/, JSON.stringify(env));
    }
    assert.deepEqual(readdirSync(spool), []);
  });

  test(`${name}: never writes through symlinks, and a broken spool never fails the build`, async () => {
    const base = tempDir();
    const target = join(base, 'target');
    mkdirSync(target);
    const linkSpool = join(base, 'link');
    symlinkSync(target, linkSpool);
    let r = await hook({ DRV_PATH: DRV, BUILDTRACE_SPOOL: linkSpool });
    assert.equal(r.code, 0);
    assert.match(r.stderr, /is a symlink/);
    assert.deepEqual(readdirSync(target), []);

    r = await hook({ DRV_PATH: DRV, BUILDTRACE_SPOOL: join(base, 'missing') });
    assert.equal(r.code, 0);
    assert.match(r.stderr, /does not exist/);

    // an attacker-placed symlink at the temp name is not followed
    const spool = join(base, 'spool');
    mkdirSync(spool);
    const victim = join(base, 'victim');
    r = await hook({ DRV_PATH: DRV, BUILDTRACE_SPOOL: spool }, `ln -s ${victim} ${spool}/.tmp-7kf39nh5dgw2airf6njpy8q6rsnyb4kb-$$; `);
    assert.equal(r.code, 0);
    assert.match(r.stderr, /cannot write/);
    assert.ok(!existsSync(victim), 'the symlink target was not created');

    // a read-only spool (as a non-root user would see it) — skipped as root, who can write anyway
    if (process.getuid?.() !== 0) {
      const ro = join(base, 'ro');
      mkdirSync(ro);
      chmodSync(ro, 0o500);
      r = await hook({ DRV_PATH: DRV, BUILDTRACE_SPOOL: ro });
      assert.equal(r.code, 0);
    }
  });
}

test('build-hook.sh: busybox shell with its own mv, else /bin/sh with /bin/mv', async () => {
  const dir = tempDir();
  const script = join(ROOT, 'scripts/build-hook.sh');
  const withBb = join(dir, 'with-busybox');
  const without = join(dir, 'without');
  assert.equal((await run('/bin/sh', [script, withBb, '/bin/busybox', '/srv/spool'])).code, 0);
  assert.equal((await run('/bin/sh', [script, without, join(dir, 'no-busybox')])).code, 0);
  const a = readFileSync(withBb, 'utf8');
  const b = readFileSync(without, 'utf8');
  if (existsSync('/bin/busybox')) {
    assert.match(a, /^#!\/bin\/busybox sh\n/);
    assert.match(a, /^mv=mv$/m);
  }
  assert.match(a, /^spool=\$\{BUILDTRACE_SPOOL:-\/srv\/spool\}$/m);
  assert.match(b, /^#!\/bin\/sh\n/);
  assert.match(b, /^mv=\/bin\/mv$/m);
  assert.equal(statSync(without).mode & 0o777, 0o755);
  for (const [h, spool] of [
    [withBb, join(dir, 'spool-a')],
    [without, join(dir, 'spool-b')],
  ] as const) {
    mkdirSync(spool);
    const r = await run(h, [], { env: { DRV_PATH: DRV, OUT_PATHS: OUT, BUILDTRACE_SPOOL: spool } });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    const files = readdirSync(spool);
    assert.equal(files.length, 1);
    assert.deepEqual(JSON.parse(readFileSync(join(spool, files[0] as string), 'utf8')).outs, [OUT]);
  }
});

test('the built hook never runs an mv found on PATH', async () => {
  const dir = tempDir();
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  const marker = join(dir, 'pwned');
  writeFileSync(join(bin, 'mv'), `#!/bin/sh\ntouch ${marker}\n`);
  chmodSync(join(bin, 'mv'), 0o755);
  const spool = join(dir, 'spool');
  mkdirSync(spool);
  const r = await run(HOOK, [], { env: { PATH: bin, DRV_PATH: DRV, OUT_PATHS: OUT, BUILDTRACE_SPOOL: spool } });
  assert.equal(r.code, 0);
  assert.equal(r.stderr, '');
  assert.ok(!existsSync(marker), 'the mv on PATH was run');
  assert.equal(readdirSync(spool).filter((f) => f.endsWith('.json')).length, 1);
});
