// ci: nix (runs on every Nix: the host and the trixie and sid chroots; see scripts/run-tests.sh)
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { NixDbStoreInfo } from '../daemon/store-info.js';
import { FileCache } from '../src/cache/file-cache.js';
import { contentAddressedPath, parseContentAddress } from '../src/nix/content-address.js';
import { formatHash, parseHash, sha256Hex } from '../src/nix/hash.js';
import { makeFixedOutputPath, makeOutputPath, parseStorePath, printStorePath } from '../src/nix/store-path.js';
import { decideLastMile, lastMileProblems, narHashText, type Attestation, type PathAnswers, type PathFact } from '../src/verify/last-mile.js';
import { CacheSource } from '../src/verify/sources.js';
import { gatherFacts, LocalStoreFacts, NarInfoFacts, NARINFO_MAX_BYTES, type FactSource } from '../src/verify/store-facts.js';
import { parseSecretKey } from '../src/nix/nix-key.js';
import { createBundle } from '../src/trace/bundle.js';
import { BUILD_TYPE_CA } from '../src/trace/statement.js';
import { FIXTURES, must, nixBuildWithHook, nixEnv, pathInfo, run, salt, startDaemon, tempDir, VERIFY_CLI, type DaemonHandle } from './helpers.js';

// --- the rules, on paths made with Nix's own path arithmetic ---

const h = (c: string): string => sha256Hex(c);
const CACHE = 'file:///cache';
const LOCAL = 'local store (/nix/var/nix/db/db.sqlite)';
const drvOf = (n: string): string => `/nix/store/${'1'.repeat(32)}-${n}.drv`;
/** A content-addressed (recursive SHA-256) path for this NAR hash and references. */
const caPath = (name: string, narHex: string, refs: string[] = []): string => printStorePath(makeFixedOutputPath('recursive', 'sha256', narHex, name, refs));
const iaPath = (name: string): string => printStorePath(makeOutputPath('out', h(`drv ${name}`), name));
const fact = (path: string, narHex: string, more: Partial<PathFact> = {}): PathFact => ({
  path,
  narSha256: narHex,
  narSize: 100,
  references: [],
  where: CACHE,
  ...more,
});
const caOf = (narHex: string): string => `fixed:r:sha256:${formatHash({ algo: 'sha256', bytes: Buffer.from(narHex, 'hex') }, 'nix32', false)}`;
const answers =
  (m: Record<string, PathFact[]>, unusable: Record<string, { where: string; reason: string }[]> = {}) =>
  (p: string): PathAnswers | undefined =>
    m[p] || unusable[p] ? { facts: m[p] ?? [], unusable: unusable[p] ?? [] } : undefined;

describe('last mile rules', () => {
  const libHex = h('lib nar');
  const lib = caPath('lib', libHex);
  const appHex = h('app nar');
  const app = iaPath('app');
  const world = new Map<string, Attestation>([
    [lib, { narSha256: libHex, narSize: 100, producerDrv: drvOf('lib') }],
    [app, { narSha256: appHex, narSize: 100, producerDrv: drvOf('app') }],
  ]);

  test('an honest cache: every path checked against it, runtime closure followed through References', () => {
    const r = decideLastMile(world, [app], answers({ [app]: [fact(app, appHex, { references: [lib] })], [lib]: [fact(lib, libHex, { ca: caOf(libHex) })] }));
    assert.deepEqual(r.mismatches, []);
    assert.deepEqual(r.unattested, []);
    assert.deepEqual(
      r.checked.map((c) => [c.path, c.against, c.runtime]),
      [
        [app, [CACHE], true],
        [lib, [CACHE], true],
      ].sort((a, b) => (String(a[0]) < String(b[0]) ? -1 : 1)),
    );
    assert.deepEqual(r.runtimeClosure, [app, lib].sort());
    assert.deepEqual(lastMileProblems(r, drvOf('app'), true), []);
  });

  test('a cache whose NarHash differs from the attested one: content-mismatch with both hashes and the derivation', () => {
    const other = h('evil');
    const r = decideLastMile(world, [app], answers({ [app]: [fact(app, other)], [lib]: [fact(lib, libHex)] }));
    assert.equal(r.mismatches.length, 1);
    const m = r.mismatches[0];
    assert.ok(m);
    assert.equal(m.field, 'narHash');
    assert.equal(m.drv, drvOf('app'));
    assert.equal(m.attested, narHashText(appHex));
    assert.equal(m.found, narHashText(other));
    assert.equal(m.where, CACHE);
    assert.ok(m.detail.includes(narHashText(appHex)) && m.detail.includes(narHashText(other)) && m.detail.includes(app));
    assert.ok(!r.checked.some((c) => c.path === app), 'a mismatching path is not "checked"');
    const ps = lastMileProblems(r, drvOf('app'), false);
    assert.deepEqual(
      ps.map((p) => p.code),
      ['content-mismatch'],
    );
  });

  test('one source agreeing does not outvote another that disagrees', () => {
    const r = decideLastMile(world, [app], answers({ [app]: [fact(app, appHex), fact(app, h('local'), { where: LOCAL })] }));
    assert.deepEqual(
      r.mismatches.map((m) => [m.path, m.where]),
      [[app, LOCAL]],
    );
  });

  test('a NarSize lie with the right hash is a mismatch too', () => {
    const r = decideLastMile(world, [app], answers({ [app]: [fact(app, appHex, { narSize: 101 })] }));
    assert.deepEqual(
      r.mismatches.map((m) => [m.field, m.attested, m.found]),
      [['narSize', '100', '101']],
    );
  });

  test('a cache that omits the narinfo: unchecked (not verified by fiat), a problem only when required', () => {
    const r = decideLastMile(world, [app], answers({ [app]: [fact(app, appHex, { references: [lib] })] }));
    assert.deepEqual(
      r.unchecked.map((u) => [u.path, u.runtime]),
      [[lib, true]],
    );
    assert.match(r.unchecked[0]?.reason ?? '', /no named cache and not the local store knows it/);
    assert.deepEqual(lastMileProblems(r, drvOf('app'), false), []);
    const req = lastMileProblems(r, drvOf('app'), true);
    assert.deepEqual(
      req.map((p) => [p.code, p.drv]),
      [['unchecked-path', drvOf('lib')]],
    );
    // a build-time path (not in the runtime closure) nobody knows never fails the run
    const bt = decideLastMile(world, [lib], answers({ [lib]: [fact(lib, libHex)] }));
    assert.deepEqual(
      bt.unchecked.map((u) => [u.path, u.runtime]),
      [[app, false]],
    );
    assert.deepEqual(lastMileProblems(bt, drvOf('lib'), true), []);
  });

  test('a runtime reference the world does not attest fails the run; it is not followed further', () => {
    const stranger = iaPath('stranger');
    const seen: string[] = [];
    const base = answers({
      [app]: [fact(app, appHex, { references: [lib, stranger] })],
      [lib]: [fact(lib, libHex)],
      [stranger]: [fact(stranger, h('x'), { references: [iaPath('beyond')] })],
    });
    const r = decideLastMile(world, [app], (p) => {
      seen.push(p);
      return base(p);
    });
    assert.deepEqual(r.unattested, [{ path: stranger, referrers: [app], where: [CACHE] }]);
    assert.ok(!r.runtimeClosure.includes(iaPath('beyond')));
    const ps = lastMileProblems(r, drvOf('app'), false);
    assert.deepEqual(
      ps.map((p) => p.code),
      ['unattested-path'],
    );
    assert.match(ps[0]?.detail ?? '', /referenced by .*-app according to file:\/\/\/cache/);
  });

  test('references are the union over sources: one source dropping a reference cannot hide it', () => {
    const stranger = iaPath('stranger');
    const r = decideLastMile(
      world,
      [app],
      answers({
        [app]: [fact(app, appHex, { references: [lib] }), fact(app, appHex, { references: [lib, stranger], where: LOCAL })],
        [lib]: [fact(lib, libHex)],
      }),
    );
    assert.deepEqual(
      r.unattested.map((u) => [u.path, u.where]),
      [[stranger, [LOCAL]]],
    );
  });

  test('a source that cannot answer fails the run (it might serve other bytes)', () => {
    const r = decideLastMile(world, [app], answers({ [app]: [fact(app, appHex)] }, { [lib]: [{ where: CACHE, reason: 'malformed line' }] }));
    assert.deepEqual(
      r.errors.map((e) => [e.path, e.where]),
      [[lib, CACHE]],
    );
    assert.deepEqual(
      lastMileProblems(r, drvOf('app'), false).map((p) => p.code),
      ['source-unreadable'],
    );
  });

  test('content addresses: a hostile cache that agrees with a lying trace is still caught by the store path', () => {
    // the trace lies: lib's NAR hash is `lie`; the cache serves the same lie, consistently in NarHash and CA
    const lie = h('lie');
    const lying = new Map(world);
    lying.set(lib, { narSha256: lie, producerDrv: drvOf('lib') });
    const r = decideLastMile(lying, [lib], answers({ [lib]: [fact(lib, lie, { ca: caOf(lie) })] }));
    const fields = r.mismatches.map((m) => m.field).sort();
    assert.deepEqual(fields, ['contentAddress', 'storePath']);
    const sp = r.mismatches.find((m) => m.field === 'storePath');
    assert.equal(sp?.found, caPath('lib', lie));
    // without a CA field the recomputation still runs if the source says it is content-addressed; without one, nothing to compute
    const plain = decideLastMile(lying, [lib], answers({ [lib]: [fact(lib, lie)] }));
    assert.deepEqual(plain.mismatches, []);
  });

  test('content addresses: CA hash and NarHash must agree (no self-reference); a self-reference is computed with ":self"', () => {
    const r = decideLastMile(world, [lib], answers({ [lib]: [fact(lib, libHex, { ca: caOf(h('other')) })] }));
    assert.ok(r.mismatches.some((m) => m.field === 'contentAddress'));
    // self-referencing CA object: the CA hash is over the NAR with the self-reference masked, so it differs from NarHash
    const modulo = h('modulo');
    const selfPath = printStorePath(makeFixedOutputPath('recursive', 'sha256', modulo, 'selfish', [], '/nix/store', true));
    const narHex = h('self nar');
    const w = new Map([[selfPath, { narSha256: narHex, producerDrv: drvOf('selfish') }]]);
    const ok = decideLastMile(w, [selfPath], answers({ [selfPath]: [fact(selfPath, narHex, { ca: caOf(modulo), references: [selfPath] })] }));
    assert.deepEqual(ok.mismatches, []);
    assert.deepEqual(
      ok.checked.map((c) => c.path),
      [selfPath],
    );
    const bad = decideLastMile(w, [selfPath], answers({ [selfPath]: [fact(selfPath, narHex, { ca: caOf(h('not it')), references: [selfPath] })] }));
    assert.deepEqual(
      bad.mismatches.map((m) => m.field),
      ['contentAddress'],
    );
  });

  test('a flat fixed output: no attested NAR hash, checked by its content address, refused when the address is another', () => {
    const fileHex = h('file');
    const fod = printStorePath(makeFixedOutputPath('flat', 'sha256', fileHex, 'src.tar'));
    const w = new Map([[fod, { producerDrv: drvOf('src.tar') }]]);
    const ca = `fixed:sha256:${formatHash({ algo: 'sha256', bytes: Buffer.from(fileHex, 'hex') }, 'nix32', false)}`;
    const ok = decideLastMile(w, [fod], answers({ [fod]: [fact(fod, h('nar of file'), { ca })] }));
    assert.deepEqual(
      ok.checked.map((c) => [c.path, c.narSha256, c.contentAddress, c.against]),
      [[fod, undefined, ca, [`${CACHE} (content address)`]]],
    );
    const wrong = decideLastMile(w, [fod], answers({ [fod]: [fact(fod, h('nar of file'), { ca: ca.replace(/.$/, (c) => (c === '0' ? '1' : '0')) })] }));
    assert.deepEqual(
      wrong.mismatches.map((m) => m.field),
      ['contentAddress'],
    );
    // #17 class 4: a source that serves it without a content address is a failure, not "unchecked"
    const none = decideLastMile(w, [fod], answers({ [fod]: [fact(fod, h('nar of file'))] }));
    assert.deepEqual(
      none.mismatches.map((m) => [m.field, m.found]),
      [['contentAddress', '(none)']],
    );
    assert.match(none.mismatches[0]?.detail ?? '', /gives no content address/);
    assert.deepEqual(none.unchecked, []);
    // and the sources are compared with each other: same content address, another NAR
    const split = decideLastMile(
      w,
      [fod],
      answers({ [fod]: [fact(fod, h('nar of file'), { ca }), fact(fod, h('nar of file, executable'), { ca, where: LOCAL })] }),
    );
    assert.deepEqual(
      split.mismatches.map((m) => [m.field, m.where]),
      [['narHash', LOCAL]],
    );
    assert.deepEqual(split.checked, []);
    // nothing to compare with: no source knows it (only then "unchecked")
    const unknown = decideLastMile(w, [fod], answers({}));
    assert.match(unknown.unchecked[0]?.reason ?? '', /no named cache and not the local store knows it/);
  });

  test('content address parsing: every form Nix writes, garbage refused', () => {
    assert.equal(parseContentAddress('fixed:r:sha256:0g1hlkjj63517il35lc2msa66a48742wwxpmi1a3c5lmh2a1nh07').method, 'recursive');
    assert.equal(parseContentAddress('fixed:sha256:1srpbcr3vlbla7fbv55j0x9ag2z457vp0p8sdbk1bmfprcihixhm').method, 'flat');
    assert.equal(parseContentAddress(`text:sha256:${'0'.repeat(52)}`).method, 'text');
    assert.equal(parseContentAddress(`fixed:git:sha1:${'0'.repeat(40)}`).method, 'git');
    for (const bad of ['', 'fixed:', 'fixed:r:sha257:00', `text:sha1:${'0'.repeat(40)}`, `source:sha256:${'0'.repeat(64)}`])
      assert.throws(() => parseContentAddress(bad), { code: 'HASH_INVALID' });
    // text with a self-reference and flat with references have no store path
    const p = parseStorePath(iaPath('t'));
    assert.throws(() => contentAddressedPath(parseContentAddress(`text:sha256:${'0'.repeat(52)}`), p, [printStorePath(p)]));
    assert.throws(() => contentAddressedPath(parseContentAddress('fixed:sha256:1srpbcr3vlbla7fbv55j0x9ag2z457vp0p8sdbk1bmfprcihixhm'), p, [lib]));
  });
});

// --- gathering: real file:// caches, hostile narinfo files ---

describe('gathering narinfo facts from a file:// cache', () => {
  const libHex = h('lib');
  const lib = caPath('lib', libHex);
  const app = iaPath('app');
  const appHex = h('app');
  const world = new Map<string, Attestation>([
    [lib, { narSha256: libHex, producerDrv: drvOf('lib') }],
    [app, { narSha256: appHex, producerDrv: drvOf('app') }],
  ]);
  const narinfo = (path: string, narHex: string, refs: string[] = [], extra = ''): string =>
    `StorePath: ${path}\nURL: nar/x.nar\nCompression: none\nNarHash: ${narHashText(narHex)}\nNarSize: 100\nReferences: ${refs.map((r) => r.slice(11)).join(' ')}\n${extra}`;
  const put = (dir: string, path: string, text: string): void => writeFileSync(join(dir, `${parseStorePath(path).hashPart}.narinfo`), text);
  /** A real FileCache that counts what it is asked. */
  const counted = (dir: string): { src: FactSource; asked: string[] } => {
    const c = new FileCache(dir);
    const asked: string[] = [];
    const get = c.get.bind(c);
    c.get = (key, ...rest) => {
      asked.push(key);
      return get(key, ...rest);
    };
    return { src: new NarInfoFacts(new CacheSource(c)), asked };
  };

  test('honest narinfo files: both paths known, each narinfo read once', async () => {
    const dir = tempDir('lm-cache-');
    put(dir, app, narinfo(app, appHex, [lib]));
    put(dir, lib, narinfo(lib, libHex, [], `CA: ${caOf(libHex)}\n`));
    const { src, asked } = counted(dir);
    const got = await gatherFacts(world, [src]);
    const r = decideLastMile(world, [app], (p) => got.get(p));
    assert.deepEqual(r.checked.map((c) => c.path).sort(), [app, lib].sort());
    assert.equal(asked.length, 2, asked.join(' '));
  });

  test('invented references are reported, never fetched; hostile narinfo files are errors, absent ones unchecked', async () => {
    const dir = tempDir('lm-hostile-');
    const invented = Array.from({ length: 200 }, (_, i) => iaPath(`fake${i}`));
    put(dir, app, narinfo(app, appHex, [lib, ...invented]));
    // lib's narinfo describes another path under lib's hash part
    put(dir, lib, narinfo(`/nix/store/${parseStorePath(lib).hashPart}-other`, libHex));
    const { src, asked } = counted(dir);
    const got = await gatherFacts(world, [src]);
    assert.equal(asked.length, 2, 'only the two attested paths were read');
    const r = decideLastMile(world, [app], (p) => got.get(p));
    assert.equal(r.unattested.length, 200);
    assert.deepEqual(
      r.errors.map((e) => e.path),
      [lib],
    );
    assert.match(r.errors[0]?.reason ?? '', /describes .*-other/);

    // malformed, oversized, a link to /dev/zero, a FIFO: errors, never a hang
    for (const [name, make] of [
      ['malformed', (d: string) => put(d, lib, `StorePath ${lib}`)],
      ['huge', (d: string) => put(d, lib, `${narinfo(lib, libHex)}X-Pad: ${'a'.repeat(NARINFO_MAX_BYTES)}\n`)],
      ['zero', (d: string) => symlinkSync('/dev/zero', join(d, `${parseStorePath(lib).hashPart}.narinfo`))],
      ['fifo', (d: string) => execFileSync('mkfifo', [join(d, `${parseStorePath(lib).hashPart}.narinfo`)])],
    ] as const) {
      const d = tempDir(`lm-${name}-`);
      make(d);
      const g = await gatherFacts(world, [new NarInfoFacts(new CacheSource(new FileCache(d)))]);
      const e = decideLastMile(world, [lib], (p) => g.get(p)).errors;
      assert.equal(e.length, 1, name);
    }

    // absent: unchecked
    const empty = tempDir('lm-empty-');
    const g = await gatherFacts(world, [new NarInfoFacts(new CacheSource(new FileCache(empty)))]);
    const u = decideLastMile(world, [app], (p) => g.get(p));
    assert.deepEqual(u.unchecked.map((x) => x.path).sort(), [app, lib].sort());
    assert.deepEqual(u.errors, []);
  });
});

// --- real Nix: a file:// cache written by `nix copy` and the local Nix database ---

describe('last mile on real Nix outputs (nix copy to file://, the local db.sqlite)', () => {
  const env = nixEnv();
  const out = new Map<string, string>();
  let cacheDir: string;
  let world: Map<string, Attestation>;
  let sources: FactSource[];
  let store: NixDbStoreInfo;

  before(async () => {
    const s = salt();
    const file = join(FIXTURES, 'last-mile.nix');
    const attrs = ['dep', 'top', 'self', 'flat', 'app'];
    const paths = (await must('nix-build', ['--no-out-link', file, '--argstr', 'salt', s, ...attrs.flatMap((a) => ['-A', a])], { env })).stdout
      .trim()
      .split('\n');
    attrs.forEach((a, i) => {
      out.set(a, paths[i] as string);
    });
    cacheDir = join(tempDir('lm-nix-'), 'cache');
    await must('nix', ['copy', '--to', `file://${cacheDir}`, out.get('app') as string], { env });
    const info = await pathInfo([...out.values()]);
    world = new Map();
    for (const [a, p] of out) {
      const i = info.get(p);
      assert.ok(i);
      const hex = formatHash(parseHash(i.narHash), 'base16', false);
      // the flat fixed output: what a verifier attests is its declared file hash, not a NAR hash
      world.set(p, a === 'flat' ? { producerDrv: drvOf(a) } : { narSha256: hex, narSize: i.narSize, producerDrv: drvOf(a) });
    }
    store = new NixDbStoreInfo('/nix/var/nix/db/db.sqlite');
    sources = [new NarInfoFacts(new CacheSource(new FileCache(cacheDir))), new LocalStoreFacts(store, LOCAL)];
  });

  test('honest: every output checked against the cache and the local store, CA paths recomputed from their NAR hashes', async () => {
    const got = await gatherFacts(world, sources);
    const r = decideLastMile(world, [out.get('app') as string], (p) => got.get(p));
    assert.deepEqual(r.mismatches, []);
    assert.deepEqual(r.errors, []);
    assert.deepEqual(r.unattested, []);
    assert.deepEqual(r.runtimeClosure, [...out.values()].sort());
    for (const c of r.checked) {
      assert.equal(c.against.length, 2, `${c.path}: ${c.against.join(', ')}`);
      assert.ok(c.against[0]?.startsWith(`file://${cacheDir}`) && c.against[1]?.startsWith('local store'));
    }
    assert.equal(r.checked.length, 5);
    // our path arithmetic gives Nix's paths for a referencing and a self-referencing CA output
    for (const a of ['top', 'self', 'dep', 'flat']) {
      const f = got.get(out.get(a) as string)?.facts[0];
      assert.ok(f?.ca, a);
      assert.equal(contentAddressedPath(parseContentAddress(f.ca), parseStorePath(f.path), f.references), f.path, a);
    }
  });

  test('a lying attestation for a CA output and for an IA output: content-mismatch against both sources', async () => {
    for (const a of ['top', 'app']) {
      const p = out.get(a) as string;
      const lying = new Map(world);
      const lie = 'ab'.repeat(32);
      lying.set(p, { ...(world.get(p) as Attestation), narSha256: lie });
      const got = await gatherFacts(lying, sources);
      const r = decideLastMile(lying, [out.get('app') as string], (x) => got.get(x));
      const real = narHashText((world.get(p) as Attestation).narSha256 as string);
      const hashMs = r.mismatches.filter((m) => m.field === 'narHash');
      assert.deepEqual(
        hashMs.map((m) => [m.path, m.attested, m.found]),
        [
          [p, narHashText(lie), real],
          [p, narHashText(lie), real],
        ],
        a,
      );
      assert.deepEqual(
        hashMs.map((m) => m.where.split(' ')[0]),
        [`file://${cacheDir}`, 'local'],
      );
      // the CA output's path is not what the lie would give
      assert.equal(
        r.mismatches.some((m) => m.field === 'storePath'),
        a === 'top',
        a,
      );
    }
  });

  test('the local store alone (no narinfo in any cache) checks too', async () => {
    const got = await gatherFacts(world, [new NarInfoFacts(new CacheSource(new FileCache(tempDir('lm-none-')))), new LocalStoreFacts(store, LOCAL)]);
    const r = decideLastMile(world, [out.get('app') as string], (p) => got.get(p));
    assert.equal(r.checked.length, 5);
    assert.ok(r.checked.every((c) => c.against.length === 1 && c.against[0]?.startsWith('local store')));
  });

  test('a tampered narinfo in the cache (NarHash of another path) is a mismatch; an empty one is an error, a missing one leaves the path unchecked', async () => {
    const dir = join(tempDir('lm-tamper-'), 'cache');
    await must('cp', ['-r', cacheDir, dir]);
    const top = out.get('top') as string;
    const f = join(dir, `${parseStorePath(top).hashPart}.narinfo`);
    const depInfo = readFileSync(join(dir, `${parseStorePath(out.get('dep') as string).hashPart}.narinfo`), 'utf8');
    const depHash = /NarHash: (.*)/.exec(depInfo)?.[1] as string;
    writeFileSync(f, readFileSync(f, 'utf8').replace(/NarHash: .*/, `NarHash: ${depHash}`));
    const got = await gatherFacts(world, [new NarInfoFacts(new CacheSource(new FileCache(dir)))]);
    const r = decideLastMile(world, [out.get('app') as string], (p) => got.get(p));
    assert.ok(r.mismatches.some((m) => m.path === top && m.field === 'narHash' && m.found === depHash));
    // and the cache's own CA field no longer matches its NarHash
    assert.ok(r.mismatches.some((m) => m.path === top && m.field === 'contentAddress'));
    writeFileSync(f, '');
    const g2 = await gatherFacts(world, [new NarInfoFacts(new CacheSource(new FileCache(dir)))]);
    assert.equal(decideLastMile(world, [out.get('app') as string], (p) => g2.get(p)).errors.length, 1, 'an empty narinfo is malformed, an error');
    rmSync(f);
    const g3 = await gatherFacts(world, [new NarInfoFacts(new CacheSource(new FileCache(dir)))]);
    const r3 = decideLastMile(world, [out.get('app') as string], (p) => g3.get(p));
    assert.deepEqual(
      r3.unchecked.map((u) => [u.path, u.runtime]),
      [[top, true]],
    );
    assert.deepEqual(r3.mismatches, []);
  });
});

// --- acceptance: trace-verify on real builds, traces signed by a daemon, outputs in a file:// cache ---

interface CliResult {
  verified: boolean;
  problems: { drv: string; code: string; detail: string; where?: string }[];
  lastMile: null | {
    required: boolean;
    sources: string[];
    checked: { path: string; drv?: string; against: string[]; runtime: boolean }[];
    unchecked: { path: string; runtime: boolean; reason: string }[];
    mismatches: { path: string; drv?: string; field: string; attested: string; found: string; where: string }[];
    unattested: { path: string }[];
    errors: unknown[];
    runtimeClosure: string[];
  };
}

describe('trace-verify: the last mile on real builds', () => {
  let A: DaemonHandle;
  let dir: string;
  let cache: string;
  let pol: string;
  const drv = new Map<string, string>();
  const out = new Map<string, string>();
  const env = nixEnv();

  /** A's row for a derivation name. */
  const trace = (name: string): { rdrv_hash: string; bundle: string; statement: Buffer } => {
    const db = new Database(A.dbFile, { readonly: true });
    const row = db.prepare('SELECT rdrv_hash, bundle, statement FROM traces WHERE drv_name = ?').get(`lm-${name}`) as {
      rdrv_hash: string;
      bundle: string;
      statement: Buffer;
    };
    db.close();
    assert.ok(row, name);
    return row;
  };
  /** A copy of the honest cache in which `name`'s trace claims another NAR hash for its output, re-signed by A. */
  const lyingCache = async (name: string, lie: string): Promise<string> => {
    const d = join(tempDir('lm-lie-'), 'cache');
    await must('cp', ['-r', cache, d]);
    const t = trace(name);
    const st = JSON.parse(t.statement.toString('utf8')) as { subject: { digest: { sha256: string } }[]; predicate: { buildDefinition: { buildType: string } } };
    (st.subject[0] as { digest: { sha256: string } }).digest.sha256 = lie;
    const key = parseSecretKey(readFileSync(A.keys.secretFile, 'utf8'));
    // signed as the daemon signs it: laut's profile with Ed25519ph
    const scheme = st.predicate.buildDefinition.buildType === BUILD_TYPE_CA ? 'ed25519ph' : 'ed25519';
    writeFileSync(join(d, 'traces', t.rdrv_hash), `${createBundle(Buffer.from(JSON.stringify(st)), key, scheme)}\n`);
    return `file://${d}`;
  };
  const verify = async (target: string, extra: string[]): Promise<{ code: number; r: CliResult; text: string }> => {
    const p = await run(VERIFY_CLI, [target, '--policy', pol, ...extra, '--json'], { env: { ...process.env, BUILDTRACE_POOL: 'never' } });
    assert.ok(p.code === 0 || p.code === 1, `exit ${p.code}: ${p.stderr}`);
    // the text run goes through the worker pool: the same verdict (pool parity)
    const t = await run(VERIFY_CLI, [target, '--policy', pol, ...extra], { env: { ...process.env, BUILDTRACE_POOL: 'always' } });
    assert.equal(t.code, p.code, t.stdout);
    return { code: p.code, r: JSON.parse(p.stdout) as CliResult, text: t.stdout };
  };

  before(async () => {
    dir = tempDir('lm-accept-');
    const s = salt();
    const args = [join(FIXTURES, 'last-mile.nix'), '--argstr', 'salt', s];
    const attrs = ['dep', 'top', 'self', 'flat', 'app'];
    const drvs = (await must('nix-instantiate', [...args, ...attrs.flatMap((a) => ['-A', a])], { env })).stdout.trim().split('\n');
    attrs.forEach((a, i) => {
      drv.set(a, drvs[i] as string);
    });
    cache = join(dir, 'cache');
    A = await startDaemon({ keyName: 'lm-builder-a', extraConfig: { caches: [{ url: `file://${cache}` }] } });
    const staging = join(dir, 'staging');
    mkdirSync(staging);
    const b = await nixBuildWithHook(staging, [...args, ...attrs.flatMap((a) => ['-A', a])]);
    assert.equal(b.code, 0, b.stderr);
    b.stdout
      .trim()
      .split('\n')
      .forEach((p, i) => {
        out.set(attrs[i] as string, p);
      });
    for (const f of readdirSync(staging)) copyFileSync(join(staging, f), join(A.spool, f));
    const r = await A.cli(['push', '--wait']);
    assert.equal(r.code, 0, r.stderr);
    await must('nix', ['copy', '--to', `file://${cache}`, out.get('app') as string], { env });
    pol = join(dir, 'policy.json');
    writeFileSync(pol, JSON.stringify({ keys: { A: { publicKey: A.keys.publicKey } }, trust: 'A' }));
  });

  after(async () => {
    await A.stop();
  });

  test('honest: VERIFIED, every path checked against the cache and the local store', async () => {
    const { code, r, text } = await verify(drv.get('app') as string, ['--cache', `file://${cache}`]);
    assert.equal(code, 0, JSON.stringify(r.problems));
    const lm = r.lastMile;
    assert.ok(lm);
    assert.deepEqual(lm.runtimeClosure, [...out.values()].sort());
    assert.deepEqual(lm.checked.map((c) => c.path).sort(), [...out.values()].sort());
    for (const c of lm.checked) {
      assert.equal(c.runtime, true);
      assert.deepEqual(
        c.against.map((w) => w.replace(/ \(content address\)$/, '')),
        [`file://${cache}`, 'local store (/nix/var/nix/db/db.sqlite)'],
        c.path,
      );
    }
    assert.deepEqual([lm.unchecked, lm.mismatches, lm.unattested, lm.errors], [[], [], [], []]);
    assert.match(text, /^VERIFIED /);
    assert.match(text, /last mile: 5 paths checked, 0 mismatching, 0 not known to any source; runtime closure 5 paths: 5 checked, 0 unchecked/);
    assert.match(text, new RegExp(`checked against: file://${cache}: 5; local store \\(/nix/var/nix/db/db.sqlite\\): 5`));
  });

  test('a content-addressed output whose trace lies about its NAR hash (validly re-signed): content-mismatch, both hashes', async () => {
    const lie = 'cd'.repeat(32);
    const c = await lyingCache('top', lie);
    const real = trace('top');
    const realHex = (JSON.parse(real.statement.toString('utf8')) as { subject: { digest: { sha256: string } }[] }).subject[0]?.digest.sha256 as string;
    for (const extra of [[], ['--no-local-store']]) {
      const { code, r, text } = await verify(drv.get('top') as string, ['--cache', c, ...extra]);
      assert.equal(code, 1, JSON.stringify(r));
      const ms = (r.lastMile?.mismatches ?? []).filter((m) => m.field === 'narHash');
      assert.deepEqual(
        ms.map((m) => [m.path, m.drv, m.attested, m.found]),
        (extra.length ? [c] : [c, 'local']).map(() => [out.get('top'), drv.get('top'), narHashText(lie), narHashText(realHex)]),
        JSON.stringify(r.problems),
      );
      assert.ok(
        r.lastMile?.mismatches.some((m) => m.field === 'storePath'),
        'the lie does not give the CA path',
      );
      const p = r.problems.find((x) => x.code === 'content-mismatch' && x.where === c);
      assert.ok(p, JSON.stringify(r.problems));
      assert.equal(p.drv, drv.get('top'));
      assert.ok(p.detail.includes(narHashText(lie)) && p.detail.includes(narHashText(realHex)));
      assert.match(text, /^NOT VERIFIED /);
      assert.match(text, /content-mismatch/);
    }
  });

  test('an input-addressed output whose trace lies: content-mismatch against the cache, and against the local store alone', async () => {
    const lie = 'ef'.repeat(32);
    const c = await lyingCache('app', lie);
    const { code, r } = await verify(drv.get('app') as string, ['--cache', c]);
    assert.equal(code, 1);
    assert.deepEqual(
      r.lastMile?.mismatches.map((m) => [m.path, m.field, m.where.split(' ')[0]]),
      [
        [out.get('app'), 'narHash', c],
        [out.get('app'), 'narHash', 'local'],
      ],
    );
    // the same lie with no narinfo anywhere: the local store database catches it
    const bare = join(tempDir('lm-bare-'), 'cache');
    mkdirSync(bare);
    await must('cp', ['-r', join(new URL(c).pathname, 'traces'), join(bare, 'traces')]);
    const local = await verify(drv.get('app') as string, ['--cache', `file://${bare}`]);
    assert.equal(local.code, 1);
    assert.deepEqual(
      local.r.lastMile?.mismatches.map((m) => [m.path, m.where]),
      [[out.get('app'), 'local store (/nix/var/nix/db/db.sqlite)']],
    );
  });

  test('no narinfo and no local store: VERIFIED with every path listed as unchecked; --require-last-mile fails', async () => {
    const bare = join(tempDir('lm-bare-'), 'cache');
    mkdirSync(bare);
    await must('cp', ['-r', join(cache, 'traces'), join(bare, 'traces')]);
    const loose = await verify(drv.get('app') as string, ['--cache', `file://${bare}`, '--no-local-store']);
    assert.equal(loose.code, 0, JSON.stringify(loose.r.problems));
    assert.deepEqual(loose.r.lastMile?.checked, []);
    assert.deepEqual(loose.r.lastMile?.unchecked.map((u) => u.path).sort(), [...out.values()].sort());
    // what the runtime closure is cannot be known beyond the target's own outputs
    assert.deepEqual(loose.r.lastMile?.runtimeClosure, [out.get('app')]);
    assert.match(loose.text, /not known to any source; runtime closure 1 paths: 0 checked, 1 unchecked/);
    const strict = await verify(drv.get('app') as string, ['--cache', `file://${bare}`, '--no-local-store', '--require-last-mile']);
    assert.equal(strict.code, 1);
    assert.deepEqual(
      strict.r.problems.map((p) => [p.code, p.drv]),
      [['unchecked-path', drv.get('app')]],
    );
    // the local store alone checks everything
    const local = await verify(drv.get('app') as string, ['--cache', `file://${bare}`, '--require-last-mile']);
    assert.equal(local.code, 0, JSON.stringify(local.r.problems));
    assert.equal(local.r.lastMile?.checked.length, 5);
  });

  test('a cache that trickles its narinfo files: the run ends after one request deadline, NOT VERIFIED naming the limit', async () => {
    const server = createServer((req, res) => {
      const key = decodeURIComponent((req.url ?? '/').slice(1));
      if (key.endsWith('.narinfo')) {
        // one byte every half second, for ever
        res.writeHead(200, { 'content-type': 'text/x-nix-narinfo' });
        const t = setInterval(() => res.write('S'), 500);
        res.on('close', () => clearInterval(t));
        return;
      }
      try {
        if (key.split('/').includes('..')) throw new Error('no');
        const body = readFileSync(join(cache, key));
        res.writeHead(200);
        res.end(body);
      } catch {
        res.writeHead(404);
        res.end();
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const t0 = Date.now();
      const { code, r } = await verify(drv.get('app') as string, ['--cache', url, '--no-local-store', '--request-timeout-ms', '2000', '--retries', '0']);
      assert.equal(code, 1);
      assert.ok(r.problems.length > 0 && r.problems.every((p) => p.code === 'source-unreadable' && p.where === url), JSON.stringify(r.problems));
      assert.match(r.problems[0]?.detail ?? '', /requestTimeoutMs/);
      // two runs (--json and text), each one 2 s deadline: the first failure abandons the other reads
      assert.ok(Date.now() - t0 < 20_000, `took ${Date.now() - t0} ms`);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  test('a hostile cache: a narinfo with an invented reference, and one describing another path', async () => {
    const d = join(tempDir('lm-hostile-'), 'cache');
    await must('cp', ['-r', cache, d]);
    const f = join(d, `${parseStorePath(out.get('app') as string).hashPart}.narinfo`);
    const stranger = `${'0'.repeat(32)}-lm-stranger`;
    writeFileSync(f, readFileSync(f, 'utf8').replace(/^References: (.*)$/m, `References: $1 ${stranger}`));
    const { code, r } = await verify(drv.get('app') as string, ['--cache', `file://${d}`]);
    assert.equal(code, 1);
    assert.deepEqual(
      r.problems.map((p) => p.code),
      ['unattested-path'],
    );
    assert.match(r.problems[0]?.detail ?? '', new RegExp(`/nix/store/${stranger} is in the runtime closure`));
    const g = join(d, `${parseStorePath(out.get('top') as string).hashPart}.narinfo`);
    writeFileSync(g, readFileSync(g, 'utf8').replace(/^StorePath: .*$/m, `StorePath: ${out.get('dep')}`));
    writeFileSync(f, readFileSync(f, 'utf8').replace(` ${stranger}`, ''));
    const other = await verify(drv.get('app') as string, ['--cache', `file://${d}`]);
    assert.equal(other.code, 1);
    assert.deepEqual(
      other.r.problems.map((p) => [p.code, p.drv]),
      [['source-unreadable', drv.get('top')]],
    );
  });
});
