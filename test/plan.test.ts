// ci: nix (runs on every Nix: the host and the trixie and sid chroots; see scripts/run-tests.sh)
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { dumpDom, pageFacts, screenshot } from './chromium.js';
import {
  FIXTURES,
  must,
  nixEnv,
  type DaemonHandle,
  HOOK,
  requireOrSkip,
  run,
  salt,
  startDaemon,
  substituteWithDeriver,
  tempDir,
  VERIFY_CLI,
} from './helpers.js';

/** What `plan --json` prints (the fields these tests read). */
interface PlanJson {
  target: string;
  current: { verified: boolean };
  next: { verified: boolean; targetProblems: { drv: string; code: string; detail: string }[] };
  counts: {
    derivations: number;
    stillVerified: number;
    lost: number;
    gained: number;
    failingBoth: number;
    toRebuild: number;
    savedIfReproducible: number;
    contentMismatch: number;
  };
  rebuild: {
    drv: string;
    name: string;
    level: number;
    kind: string;
    detail: string;
    absent: { identity: string; why: string }[];
    notReproduced?: unknown;
    inputs: string[];
  }[];
  derivations: { drv: string; name: string; kind: string; status: string; action: string; inputs: number[]; lastMile?: string[] }[];
  commands: { drvs: string[]; nixStore: string[] };
}

type Who = 'A' | 'B' | 'C';

/**
 * Who traced what (the test's own assignment; the expected plan is computed from it alone):
 * a quarter of the leaves, the groups 0, 3, 6, 9 and the input-addressed library only A and B;
 * everything else C too (and the rest of the leaves and the top all three).
 */
function tracers(name: string): Who[] {
  const n = name.replace(/^p-/, '');
  const leaf = /^leaf(\d+)$/.exec(n);
  if (leaf) return Number(leaf[1]) % 4 === 0 ? ['A', 'B'] : Number(leaf[1]) % 4 === 1 ? ['A', 'C'] : ['A', 'B', 'C'];
  const group = /^group(\d+)$/.exec(n);
  if (group) return Number(group[1]) % 3 === 0 ? ['A', 'B'] : ['A', 'C'];
  if (n === 'ialib' || n === 'ndlib') return ['A', 'B'];
  if (n === 'top') return ['A', 'B', 'C'];
  return ['A', 'C']; // chain*, ndapp*, ndtop
}

const nameOfDrv = (p: string): string => p.replace(/^\/nix\/store\/[a-z0-9]{32}-/, '').replace(/\.drv$/, '');

describe('trace-verify plan: a policy change over a real 102-derivation closure traced by three builders', () => {
  let A: DaemonHandle;
  let B: DaemonHandle;
  let C: DaemonHandle;
  let dir: string;
  let nondet: string;
  let args: string[];
  let top: string;
  let nd: string;
  /** drv -> its input drvs (from Nix's own graph output). */
  const edges = new Map<string, string[]>();
  const pols: Record<string, string> = {};

  const spoolNames = (spool: string): Map<string, string> => {
    const m = new Map<string, string>();
    for (const f of readdirSync(spool)) m.set(f, nameOfDrv((JSON.parse(readFileSync(join(spool, f), 'utf8')) as { drv: string }).drv));
    return m;
  };
  const feed = async (d: DaemonHandle, spool: string, keep: (name: string) => boolean): Promise<void> => {
    for (const [f, n] of spoolNames(spool)) if (keep(n)) copyFileSync(join(spool, f), join(d.spool, `${f.replace('.json', '')}-x.json`));
    const r = await d.cli(['push', '--wait']);
    assert.equal(r.code, 0, r.stderr);
  };
  /** Runs Nix with trace-hook spooling into a fresh directory; returns that directory. */
  const withHook = async (cmd: string, cmdArgs: string[]): Promise<string> => {
    const spool = tempDir('plan-spool-');
    const r = await run(cmd, cmdArgs, { env: nixEnv({ 'post-build-hook': HOOK }, { BUILDTRACE_SPOOL: spool }) });
    assert.equal(r.code, 0, r.stderr);
    return spool;
  };
  const dbs = (): string[] => [A, B, C].flatMap((h) => ['--db', h.dbFile]);
  const plan = async (target: string, from: string, to: string, extra: string[] = []): Promise<{ code: number; p: PlanJson }> => {
    const r = await run(VERIFY_CLI, ['plan', target, '--policy', from, '--to', to, ...dbs(), ...extra, '--json']);
    assert.ok(r.code === 0 || r.code === 1, `exit ${r.code}: ${r.stderr}`);
    return { code: r.code, p: JSON.parse(r.stdout) as PlanJson };
  };
  const verify = async (
    target: string,
    pol: string,
    extra: string[] = ['--no-local-store'],
  ): Promise<{ code: number; problems: { drv: string; code: string; blocking?: boolean }[] }> => {
    const r = await run(VERIFY_CLI, [target, '--policy', pol, ...dbs(), ...extra, '--json']);
    assert.ok(r.code === 0 || r.code === 1, `exit ${r.code}: ${r.stderr}`);
    return { code: r.code, problems: (JSON.parse(r.stdout) as { problems: { drv: string; code: string; blocking?: boolean }[] }).problems };
  };
  const closureOf = (root: string): string[] => {
    const seen = new Set<string>();
    const todo = [root];
    while (todo.length > 0) {
      const d = todo.pop() as string;
      if (seen.has(d)) continue;
      seen.add(d);
      todo.push(...(edges.get(d) ?? []));
    }
    return [...seen];
  };
  /** The plan the test expects from its own assignment: who must re-trace under 2 of {A, C}, and what is above them. */
  const expected = (root: string): { rebuild: Set<string>; saved: Set<string>; kept: Set<string> } => {
    const all = closureOf(root);
    const rebuild = new Set(all.filter((d) => tracers(nameOfDrv(d)).filter((w) => w !== 'B').length < 2));
    const saved = new Set(all.filter((d) => !rebuild.has(d) && closureOf(d).some((x) => rebuild.has(x))));
    const kept = new Set(all.filter((d) => !rebuild.has(d) && !saved.has(d)));
    return { rebuild, saved, kept };
  };

  before(async () => {
    dir = tempDir('plan-');
    nondet = join(dir, 'nondet');
    writeFileSync(nondet, `first ${salt()}\n`);
    args = [join(FIXTURES, 'plan.nix'), '--argstr', 'salt', salt(), '--argstr', 'nondet', nondet];
    [top, nd] = (await must('nix-instantiate', [...args, '-A', 'top', '-A', 'nd'], { env: nixEnv() })).stdout.trim().split('\n') as [string, string];
    // the derivation graph as Nix reports it: "input" -> "user"
    for (const root of [top, nd]) {
      const dot = (await must('nix-store', ['--query', '--graph', root], { env: nixEnv() })).stdout;
      for (const m of dot.matchAll(/"([^"]+\.drv)" -> "([^"]+\.drv)"/g)) {
        const [, from, to] = m as unknown as [string, string, string];
        const full = (s: string): string => `/nix/store/${s}`;
        const l = edges.get(full(to)) ?? [];
        if (!l.includes(full(from))) l.push(full(from));
        edges.set(full(to), l);
      }
    }
    [A, B, C] = await Promise.all([startDaemon({ keyName: 'plan-a' }), startDaemon({ keyName: 'plan-b' }), startDaemon({ keyName: 'plan-c' })]);
    // one build; each builder traces (signs) only its share of it
    const spool = await withHook('nix-build', ['--no-out-link', ...args, '-A', 'top', '-A', 'nd']);
    for (const [h, w] of [
      [A, 'A'],
      [B, 'B'],
      [C, 'C'],
    ] as const)
      await feed(h, spool, (n) => tracers(n).includes(w));
    const keys = (status?: Record<string, string>): Record<string, unknown> =>
      Object.fromEntries(
        (
          [
            ['A', A],
            ['B', B],
            ['C', C],
          ] as const
        ).map(([n, h]) => [n, { publicKey: h.keys.publicKey, ...(status?.[n] ? { status: status[n] } : {}) }]),
      );
    const write = (name: string, p: unknown): void => {
      pols[name] = join(dir, `${name}.json`);
      writeFileSync(pols[name], JSON.stringify(p));
    };
    write('current', { keys: keys(), trust: { threshold: 2, of: ['A', 'B', 'C'] } });
    write('next', { keys: { A: keys()['A'], C: keys()['C'] }, trust: { threshold: 2, of: ['A', 'C'] } });
    write('revoked', { keys: keys({ B: 'revoked' }), trust: { threshold: 2, of: ['A', 'B', 'C'] } });
  });

  after(async () => {
    await Promise.all([A?.stop(), B?.stop(), C?.stop()]);
  });

  test('the closure is what the acceptance asks for', () => {
    const all = closureOf(top);
    assert.equal(all.length, 102);
    // no builder traced everything
    for (const w of ['A', 'B', 'C'] as const) assert.ok(all.some((d) => !tracers(nameOfDrv(d)).includes(w)) || w === 'A');
    assert.ok(all.some((d) => !tracers(nameOfDrv(d)).includes('B')) && all.some((d) => !tracers(nameOfDrv(d)).includes('C')));
  });

  let before1: PlanJson;
  test('plan: dropping B costs exactly where B was needed, lowest first; the CA chain above the IA library is saved', async () => {
    assert.equal((await verify(top, pols['current'] as string)).code, 0);
    const { code, p } = await plan(top, pols['current'] as string, pols['next'] as string);
    before1 = p;
    assert.equal(code, 1);
    const want = expected(top);
    assert.deepEqual(new Set(p.rebuild.map((r) => r.drv)), want.rebuild);
    assert.equal(want.rebuild.size, 25);
    // lowest first: every rebuild below another comes before it
    const pos = new Map(p.rebuild.map((r, i) => [r.drv, i]));
    for (const r of p.rebuild)
      for (const x of closureOf(r.drv)) if (x !== r.drv && pos.has(x)) assert.ok((pos.get(x) as number) < (pos.get(r.drv) as number), `${x} before ${r.drv}`);
    const saved = new Set(p.derivations.filter((d) => d.action === 'saved').map((d) => d.drv));
    assert.deepEqual(saved, want.saved);
    for (const d of closureOf(top).filter((x) => /-p-chain\d+\.drv$/.test(x))) assert.ok(saved.has(d), `chain ${d} saved`);
    assert.deepEqual(new Set(p.derivations.filter((d) => d.action === 'verified').map((d) => d.drv)), want.kept);
    assert.deepEqual(p.counts, {
      derivations: 102,
      stillVerified: want.kept.size,
      lost: want.rebuild.size + want.saved.size,
      gained: 0,
      failingBoth: 0,
      toRebuild: 25,
      savedIfReproducible: want.saved.size,
      contentMismatch: 0,
    });
    // why: B's absence leaves 2 of {A, C} unmet, at the derivation itself
    for (const r of p.rebuild) {
      assert.equal(r.kind, 'signers', JSON.stringify(r));
      assert.deepEqual(r.absent, [{ identity: 'B', why: 'not in the next policy' }]);
      assert.match(r.detail, /signed by \{A\}.*needs A and C: 1 more of \{C\}/);
    }
    // groups over a rebuilt leaf are rebuilt because of their own signers, one level up
    assert.ok(p.rebuild.filter((r) => /^p-group/.test(r.name)).every((r) => r.level === 1));
    assert.deepEqual(
      p.commands.drvs,
      p.rebuild.map((r) => r.drv),
    );
    const human = await run(VERIFY_CLI, ['plan', top, '--policy', pols['current'] as string, '--to', pols['next'] as string, ...dbs()]);
    assert.equal(human.code, 1);
    assert.match(human.stdout, /102 derivations: 60 still verified, 42 lost, 0 gained, 0 failing under both; 25 to rebuild, 17 saved/);
    assert.match(human.stdout, /missing: B \(not in the next policy\)/);
    assert.match(human.stdout, /nix-store --realise --check \/nix\/store\//);
  });

  test('plan --html: the page draws every derivation and highlights exactly the rebuild set (headless Chromium)', async (t) => {
    if (!requireOrSkip(t, 'chromium', existsSync('/usr/bin/chromium'), "Debian's chromium (scripts/setup.sh installs it on the host)")) return;
    const p = before1;
    // the picture: every derivation drawn (no clustering at this size), exactly the rebuild set highlighted
    const html = join(dir, 'plan.html');
    const h = await run(VERIFY_CLI, ['plan', top, '--policy', pols['current'] as string, '--to', pols['next'] as string, ...dbs(), '--html', html, '--json']);
    assert.equal(h.code, 1);
    const { dom } = await dumpDom(html);
    const f = pageFacts(dom);
    assert.equal(f.body['ready'], 'yes');
    assert.equal(f.nodes, 102);
    assert.equal(f.body['clusters-rendered'], '0');
    assert.deepEqual(new Set(f.rebuild), new Set(p.rebuild.map((r) => r.drv)));
    process.stderr.write(`plan page screenshot: ${await screenshot(html)}\n`);
  });

  test('revoking B: its claims stop counting; the verdicts match the plan, and the failure list names only what blocks', async () => {
    const { p } = await plan(top, pols['current'] as string, pols['revoked'] as string);
    assert.deepEqual(
      p.rebuild.map((r) => r.drv),
      before1.rebuild.map((r) => r.drv),
    );
    assert.ok(
      p.rebuild.every((r) => r.absent.length === 1 && r.absent[0]?.identity === 'B' && /revoked/.test(r.absent[0].why)),
      JSON.stringify(p.rebuild[0]),
    );
    const v = await verify(top, pols['revoked'] as string);
    assert.equal(v.code, 1);
    // blocking: exactly the lowest failing derivations (level 0 of the plan); B's revoked lines elsewhere are notes
    const blocking = new Set(v.problems.filter((x) => x.blocking).map((x) => x.drv));
    assert.deepEqual(blocking, new Set(p.rebuild.filter((r) => r.level === 0).map((r) => r.drv)));
    assert.ok(v.problems.some((x) => x.code === 'key-revoked' && x.blocking === false));
    // a still-verified derivation verifies, a saved one does not (yet)
    const kept = p.derivations.find((d) => d.action === 'verified' && d.kind === 'ca') as { drv: string };
    const saved = p.derivations.find((d) => d.action === 'saved') as { drv: string };
    assert.equal((await verify(kept.drv, pols['revoked'] as string)).code, 0);
    assert.equal((await verify(saved.drv, pols['revoked'] as string)).code, 1);
  });

  test('installed: a held path whose only admitted signer is revoked is reported with its GC root (exit 1); unchanged policy exit 0', async () => {
    // GC roots, as a user's profile would hold them: the IA library (traced by A and B) and a leaf A and C traced
    const libRoot = join(dir, 'lib-root');
    const leafRoot = join(dir, 'leaf-root');
    await must('nix-store', ['--add-root', libRoot, '--indirect', '--realise', drvOf('ialib')], { env: nixEnv() });
    await must('nix-store', ['--add-root', leafRoot, '--indirect', '--realise', drvOf('leaf1')], { env: nixEnv() });
    const installed = async (
      pol: string,
    ): Promise<{ code: number; j: { verified: boolean; paths: { path: string; status: string; reason: string; roots: string[] }[] } }> => {
      const r = await run(VERIFY_CLI, ['installed', '--policy', pol, libRoot, leafRoot, ...dbs(), '--json']);
      assert.ok(r.code === 0 || r.code === 1, `exit ${r.code}: ${r.stderr}`);
      return { code: r.code, j: JSON.parse(r.stdout) };
    };
    const ok = await installed(pols['current'] as string);
    assert.equal(ok.code, 0, JSON.stringify(ok.j));
    assert.equal(ok.j.paths.length, 2);
    assert.ok(ok.j.paths.every((p) => p.status === 'verified'));
    const bad = await installed(pols['revoked'] as string);
    assert.equal(bad.code, 1);
    const failing = bad.j.paths.filter((p) => p.status === 'failed');
    assert.equal(failing.length, 1, JSON.stringify(bad.j));
    assert.match(failing[0]?.path ?? '', /-p-ialib$/);
    assert.deepEqual(failing[0]?.roots, [libRoot]);
    assert.match(failing[0]?.reason ?? '', /threshold-not-met: signed by \{A\}/);
    const human = await run(VERIFY_CLI, ['installed', '--policy', pols['revoked'] as string, libRoot, leafRoot, ...dbs()]);
    assert.equal(human.code, 1);
    assert.match(human.stdout, new RegExp(`FAIL /nix/store/\\S+-p-ialib \\(held by ${libRoot}\\)`));
  });

  const drvOf = (n: string): string => closureOf(top).find((d) => d.endsWith(`-p-${n}.drv`)) as string;
  /** A path named like an output of `p-${name}`, holding other bytes, that a cache says `name`'s .drv produced. */
  const impostor = async (name: string): Promise<string> => {
    const d = join(dir, `evil-${salt()}`);
    mkdirSync(d);
    writeFileSync(join(d, `p-${name}`), `evil ${salt()}\n`);
    const p = (await must('nix-store', ['--add', join(d, `p-${name}`)], { env: nixEnv() })).stdout.trim();
    await substituteWithDeriver(p, drvOf(name), join(dir, `bc-${salt()}`));
    return p;
  };

  test('plan takes an output path through the target door as trace-verify does; a lying recorded deriver fails the same way', async () => {
    // an input-addressed output path: its declared path, which the .drv's own hash gives
    const libOut = (await must('nix-store', ['--query', '--outputs', drvOf('ialib')], { env: nixEnv() })).stdout.trim();
    const lib = await plan(libOut, pols['current'] as string, pols['next'] as string);
    assert.equal(lib.code, 1);
    assert.equal(lib.p.target, drvOf('ialib'));
    assert.deepEqual(
      lib.p.rebuild.map((r) => r.name),
      ['p-ialib'],
    );
    // a content-addressed output path: its verified claim must give exactly this path
    const leaf1Out = (await must('nix-store', ['--realise', drvOf('leaf1')], { env: nixEnv() })).stdout.trim();
    const ca = await plan(leaf1Out, pols['current'] as string, pols['next'] as string);
    assert.equal(ca.code, 0, JSON.stringify(ca.p.next));
    // the same door: trace-verify names the same derivation for the same path
    const vca = await run(VERIFY_CLI, [leaf1Out, '--policy', pols['next'] as string, ...dbs(), '--json']);
    assert.equal(vca.code, 0, vca.stderr);
    assert.equal(ca.p.target, (JSON.parse(vca.stdout) as { target: string }).target);
    assert.match(ca.p.target, /-p-leaf1\.drv$/);
    const refusedByBoth = async (path: string, why: RegExp): Promise<void> => {
      const pr = await run(VERIFY_CLI, ['plan', path, '--policy', pols['current'] as string, '--to', pols['next'] as string, ...dbs()]);
      const vr = await run(VERIFY_CLI, [path, '--policy', pols['next'] as string, ...dbs()]);
      assert.equal(pr.code, 2, pr.stderr);
      assert.equal(vr.code, 2, vr.stderr);
      assert.match(pr.stderr, why);
      assert.equal(pr.stderr, vr.stderr);
    };
    // a cache's Deriver: names an input-addressed derivation that does not produce the path: refused (exit 2), word for word as trace-verify
    await refusedByBoth(await impostor('leaf0'), /is not an output of .*-p-leaf0\.drv, the deriver Nix recorded/);
    // the top's output (deferred: input-addressed over content-addressed inputs): Nix records a resolved .drv, which names no
    // dependencies; both take the unresolved top from Nix's realisations (it used to be refused), the same target as the .drv's plan
    const topOut = (await must('nix-store', ['--realise', top], { env: nixEnv() })).stdout.trim();
    const topDeriver = (await must('nix-store', ['--query', '--deriver', topOut], { env: nixEnv() })).stdout.trim();
    assert.notEqual(topDeriver, top, 'Nix 2.8+ records the resolved .drv for a deferred output');
    const byDrv = await plan(top, pols['current'] as string, pols['next'] as string);
    const byOut = await plan(topOut, pols['current'] as string, pols['next'] as string);
    assert.equal(byOut.p.target, top);
    assert.equal(byOut.code, byDrv.code);
    assert.deepEqual(
      byOut.p.rebuild.map((r) => r.name),
      byDrv.p.rebuild.map((r) => r.name),
    );
    const vtop = await run(VERIFY_CLI, [topOut, '--policy', pols['current'] as string, ...dbs(), '--json']);
    assert.equal(vtop.code, 0, vtop.stderr);
    assert.deepEqual((JSON.parse(vtop.stdout) as { target: string; outputs: Record<string, string> }).outputs, { out: topOut });
    // named like a content-addressed output of the named derivation: the door lets it in, the verdict must prove it (target-unproven)
    const evilCa = await impostor('leaf1');
    const pc = await plan(evilCa, pols['current'] as string, pols['next'] as string);
    assert.equal(pc.code, 1);
    assert.equal(pc.p.current.verified, false);
    assert.ok(
      pc.p.next.targetProblems.some((x) => x.code === 'target-unproven' && x.detail.includes(evilCa)),
      JSON.stringify(pc.p.next),
    );
    const vc = await verify(evilCa, pols['next'] as string);
    assert.equal(vc.code, 1);
    assert.ok(vc.problems.some((x) => x.code === 'target-unproven'));
  });

  test("installed: every path goes through the target door; a CA path verifies or fails by its unresolved derivation, found through Nix's realisations", async () => {
    // a content-addressed chain link above the IA library: Nix records the resolved .drv as its deriver
    const chainRoot = join(dir, 'chain-root');
    await must('nix-store', ['--add-root', chainRoot, '--indirect', '--realise', drvOf('chain0')], { env: nixEnv() });
    const chainOut = realpathSync(chainRoot);
    const recorded = (await must('nix-store', ['--query', '--deriver', chainOut], { env: nixEnv() })).stdout.trim();
    assert.notEqual(recorded, drvOf('chain0'), 'Nix 2.8+ records the resolved .drv for a CA output');
    // an impostor named like a CA leaf, its Deriver: the real leaf's .drv
    const evilRoot = join(dir, 'evil-root');
    const evil = await impostor('leaf1');
    await must('nix-store', ['--add-root', evilRoot, '--indirect', '--realise', evil], { env: nixEnv() });
    const r = await run(VERIFY_CLI, ['installed', '--policy', pols['next'] as string, chainRoot, evilRoot, ...dbs(), '--json']);
    assert.equal(r.code, 1, r.stderr);
    const j = JSON.parse(r.stdout) as { verified: boolean; paths: { path: string; status: string; reason: string; roots: string[] }[] };
    const byPath = new Map(j.paths.map((p) => [p.path, p]));
    // the recorded deriver is resolved (no input derivations): the door takes the unresolved chain0 from Nix's realisations
    // (it used to refuse the path), whose verdict asks for the library's traces (only A and B: not enough under next)
    assert.equal(byPath.get(chainOut)?.status, 'failed', JSON.stringify(j));
    assert.match(byPath.get(chainOut)?.reason ?? '', /^\/nix\/store\/\S+-p-(chain\d|ialib)\.drv: threshold-not-met/);
    const cur = await run(VERIFY_CLI, ['installed', '--policy', pols['current'] as string, chainRoot, ...dbs(), '--json']);
    assert.equal(cur.code, 0, cur.stdout);
    assert.ok(
      (JSON.parse(cur.stdout) as typeof j).paths.some((p) => p.path === chainOut && p.status === 'verified'),
      cur.stdout,
    );
    assert.deepEqual(byPath.get(chainOut)?.roots, [chainRoot]);
    assert.equal(byPath.get(evil)?.status, 'failed', JSON.stringify(j));
    assert.match(byPath.get(evil)?.reason ?? '', /^target-unproven: no verified claim gives/);
    assert.ok(
      j.paths.every((p) => p.status !== 'verified' || !/-p-(chain0|leaf1)$/.test(p.path)),
      JSON.stringify(j),
    );
  });

  test('plan includes the last mile: a derivation verified in trust whose content at a cache is not the attested one is not still verified', async () => {
    // a real cache holding two leaves; one narinfo edited to claim the other's NAR hash
    const cache = join(dir, 'lying-cache');
    const leaf2Out = (await must('nix-store', ['--query', '--outputs', drvOf('leaf2')], { env: nixEnv() })).stdout.trim();
    const leaf4Out = (await must('nix-store', ['--query', '--outputs', drvOf('leaf4')], { env: nixEnv() })).stdout.trim();
    await must('nix', ['copy', '--to', `file://${cache}`, leaf2Out, leaf4Out], { env: nixEnv() });
    const info = (p: string): string => join(cache, `${p.slice(11, 43)}.narinfo`);
    const otherHash = /^NarHash: .*$/m.exec(readFileSync(info(leaf4Out), 'utf8'))?.[0] as string;
    writeFileSync(info(leaf2Out), readFileSync(info(leaf2Out), 'utf8').replace(/^NarHash: .*$/m, otherHash));
    const withCache = ['--cache', `file://${cache}`];
    // the same policy on both sides: everything verifies in trust; leaf2, its group and the top do not hold the attested bytes
    const same = await plan(top, pols['current'] as string, pols['current'] as string, withCache);
    assert.equal(same.code, 1);
    assert.equal(same.p.next.verified, false);
    assert.ok(
      same.p.next.targetProblems.some((x) => x.code === 'content-mismatch' && x.detail.includes(leaf2Out)),
      JSON.stringify(same.p.next),
    );
    const mism = same.p.derivations.filter((d) => d.action === 'content-mismatch');
    assert.deepEqual(mism.map((d) => d.name).sort(), ['p-group0', 'p-leaf2', 'p-top']);
    assert.match(
      (mism.find((d) => d.name === 'p-leaf2')?.lastMile ?? []).join(' '),
      new RegExp(`content-mismatch: .*${leaf2Out.slice(11)}.*\\[file://${cache}\\]`),
    );
    assert.equal(same.p.counts.contentMismatch, 3);
    assert.equal(same.p.counts.stillVerified, 99);
    // trace-verify's own verdict, the same code path
    const v = await verify(top, pols['current'] as string, withCache);
    assert.equal(v.code, 1);
    assert.ok(v.problems.some((x) => x.code === 'content-mismatch'));
    // dropping B: the target fails in trust, and leaf2 (still verified in trust under next) is checked as the highest verified below it
    const drop = await plan(top, pols['current'] as string, pols['next'] as string, withCache);
    assert.equal(drop.code, 1);
    assert.equal(drop.p.derivations.find((d) => d.name === 'p-leaf2')?.action, 'content-mismatch');
    assert.equal(drop.p.counts.stillVerified, before1.counts.stillVerified - 1);
    assert.deepEqual(
      drop.p.rebuild.map((r) => r.drv),
      before1.rebuild.map((r) => r.drv),
    );
    const human = await run(VERIFY_CLI, ['plan', top, '--policy', pols['current'] as string, '--to', pols['next'] as string, ...dbs(), ...withCache]);
    assert.match(human.stdout, /1 verified in trust under the next policy, but a cache or the local store holds other content than the attested/);
    assert.match(human.stdout, /p-leaf2 \S+: content-mismatch: /);
  });

  test('C rebuilds exactly the list with the printed command; then the target verifies under the next policy and nothing is left', async () => {
    const cmd = before1.commands.nixStore[1] as string;
    const [bin, ...cmdArgs] = cmd.split(' ') as [string, ...string[]];
    const spool = await withHook(bin, cmdArgs);
    const rebuilt = new Set(spoolNames(spool).values());
    assert.deepEqual(rebuilt, new Set(before1.rebuild.map((r) => r.name)), 'C rebuilt the list and nothing more');
    await feed(C, spool, () => true);
    const { code, p } = await plan(top, pols['current'] as string, pols['next'] as string);
    assert.equal(code, 0);
    assert.equal(p.counts.toRebuild, 0);
    assert.equal(p.counts.stillVerified, 102);
    assert.equal((await verify(top, pols['next'] as string)).code, 0);
    assert.equal((await verify(top, pols['revoked'] as string)).code, 0);
    const human = await run(VERIFY_CLI, ['plan', top, '--policy', pols['current'] as string, '--to', pols['next'] as string, ...dbs()]);
    assert.match(human.stdout, /nothing to rebuild/);
  });

  test('a rebuild of an input-addressed library that does not reproduce forces its users into the set, and says why', async () => {
    const first = await plan(nd, pols['current'] as string, pols['next'] as string);
    assert.deepEqual(
      first.p.rebuild.map((r) => r.name),
      ['p-ndlib'],
    );
    assert.deepEqual(
      first.p.derivations
        .filter((d) => d.action === 'saved')
        .map((d) => d.name)
        .sort(),
      ['p-ndapp0', 'p-ndapp1', 'p-ndtop'],
    );
    // C, on its own machine, builds ndlib afresh and gets other bytes
    const lib = closureOf(nd).find((d) => /-p-ndlib\.drv$/.test(d)) as string;
    const out = (await must('nix-store', ['--query', '--outputs', lib], { env: nixEnv() })).stdout.trim();
    const doomed = (await must('nix-store', ['--query', '--referrers-closure', out], { env: nixEnv() })).stdout.trim().split('\n');
    await must('nix-store', ['--delete', ...doomed], { env: nixEnv() });
    writeFileSync(nondet, `second ${salt()}\n`);
    const spool = await withHook('nix-store', ['--realise', lib]);
    await feed(C, spool, () => true);
    const { code, p } = await plan(nd, pols['current'] as string, pols['next'] as string);
    assert.equal(code, 1);
    const byName = new Map(p.rebuild.map((r) => [r.name, r]));
    assert.deepEqual([...byName.keys()].sort(), ['p-ndapp0', 'p-ndapp1', 'p-ndlib']);
    assert.ok(byName.get('p-ndlib')?.notReproduced, JSON.stringify(byName.get('p-ndlib')));
    for (const n of ['p-ndapp0', 'p-ndapp1']) {
      const r = byName.get(n);
      assert.equal(r?.kind, 'input-changed', JSON.stringify(r));
      assert.deepEqual(r?.inputs, [lib]);
      assert.match(r?.detail ?? '', /did not reproduce/);
    }
    // the top binds only its users' (reproducible) outputs: saved once they are rebuilt
    assert.deepEqual(
      p.derivations.filter((d) => d.action === 'saved').map((d) => d.name),
      ['p-ndtop'],
    );
    rmSync(spool, { recursive: true, force: true });
    mkdirSync(spool);
  });
});
