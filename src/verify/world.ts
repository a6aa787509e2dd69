import { assertionKey, claimKey, depKey, type DepRef, type Entry, type OutputMap, type Problem } from './claims.js';
import { describeTrust, missing, satisfies, type TrustNode } from './trust-tree.js';

/**
 * The trust verdict over checked entries (README "Trust semantics"). Pure.
 *
 * A target verifies iff, in some consistent world (no store path with two NAR hashes among the
 * claims used), the *counting* claims for the target that give the required outputs have
 * signers that satisfy the trust tree. A claim counts iff each dependency resolution it uses
 * (the outputs it consumes, at those paths) is backed:
 *  (a) the counting claims at that dependency that give exactly those outputs have signers
 *      that satisfy the trust tree, or
 *  (b) its own signer has a counting claim there that gives them (its own chain: divergence
 *      upstream that converges downstream, laut).
 * So a vote at a derivation counts only for the output map its consumers use, never for
 * another signer's different outputs (#17 class 3). Counting is monotone in the claims, so
 * one bottom-up pass per world decides. Worlds differ only on disputed paths; each is tried in
 * an order fixed by identities and hashes, never by input order.
 */

/** A fixed-output derivation: a leaf that needs no signature. */
export interface FodLeaf {
  readonly path: string;
  /** The declared NAR sha256 (recursive sha256 FODs); undefined for flat ones. */
  readonly sha256: string | undefined;
}

export interface Node {
  readonly drv: string;
  readonly fod?: FodLeaf;
  readonly entries: readonly Entry[];
}

interface DecideInput {
  readonly target: string;
  readonly required: readonly string[];
  /** Every udrv of the closure, inputs before their users. */
  readonly order: readonly string[];
  readonly nodes: ReadonlyMap<string, Node>;
  readonly trust: TrustNode;
  /** Bound on the worlds tried. */
  readonly maxWorlds: number;
  /** NAR sha256 the consumer's local store or caches hold for disputed paths: that world is tried first (the last mile refuses others). */
  readonly held?: ReadonlyMap<string, string>;
  /**
   * An earlier verdict's settled claims (an incremental verdict, see Settled): derivations of
   * `order` found here (other than the target) are boundary nodes whose counting claims are
   * taken from it, and what lies below them is not in `order` at all.
   */
  readonly settled?: Settled;
}

/**
 * What a verified, dispute-free verdict leaves for a later one over an overlapping closure
 * (serve: a new top-level derivation over a closure verified seconds ago, same policy, keys
 * and sources). Every derivation's live claims (equivocations dropped), the counting ones,
 * the fixed-output leaves and every path a live claim binds, with its one hash; never the
 * target's (the door may have filtered its claims). Closed downwards as long as decide is given
 * exactly the target's closure (verifyClosure): nothing in it uses the target, and a seeded
 * verdict's settled claims add its own closure but its target to the seed's.
 *
 * Why a seeded decide gives the full one's verdict: counting at a derivation depends only on
 * the live claims at and below it, on the policy and on the world; with no disputed path
 * there is one world, in which every claim is consistent. The claims at and below a settled
 * derivation are the same in the later closure (the same .drv closure, policy, keys and
 * source reads: the caller's staleness bound), so their counting is the settled one. A seeded
 * decide is used only when the later run's own claims bind every path the settled claims bind
 * to the same hash and dispute no path among themselves (else it answers "not verified" and
 * the caller runs the full verdict): then the full graph has no disputed path either, the
 * one world is the same, and counting, the target's candidates, the chosen claims and the
 * world below follow from the same sets by the same code (k-of-n and own-thread backing
 * included: producersOf and counting are the full run's at every derivation reached).
 */
export interface Settled {
  readonly live: ReadonlyMap<string, readonly Entry[]>;
  readonly counting: ReadonlySet<Entry>;
  readonly fod: ReadonlyMap<string, FodLeaf>;
  readonly bindings: ReadonlyMap<string, string>;
}

export interface WorldPath {
  readonly narSha256?: string;
  /** The udrv whose output it is; absent for sources. */
  readonly producerDrv?: string;
}

export interface Verdict {
  readonly verified: boolean;
  readonly outputs: Record<string, string>;
  readonly signers: string[];
  readonly candidates: number;
  /** For a verified target: every path the chosen entries bind, with its NAR hash and producer. */
  readonly world: Record<string, WorldPath>;
  readonly entries: readonly Entry[];
  readonly problems: Problem[];
  /** Verified with no disputed path: what a later seeded decide may start from. */
  readonly settled?: Settled;
}

const byStr = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Calls `f` for every path an entry binds, with the hash it binds it to; stops when `f` returns false. */
function eachBinding(e: Entry, f: (path: string, sha: string) => unknown): boolean {
  for (const o of e.outputs.values()) if (f(o.path, o.sha256) === false) return false;
  for (const [p, h] of e.inputs) if (f(p, h) === false) return false;
  return true;
}

function hashFor(e: Entry, path: string): string | undefined {
  for (const o of e.outputs.values()) if (o.path === path) return o.sha256;
  return e.inputs.get(path);
}

/** The paths some entries bind to two different NAR hashes. */
export function disputedPaths(lists: Iterable<readonly Entry[]>): Set<string> {
  const firstHash = new Map<string, string>();
  const disputed = new Set<string>();
  for (const es of lists) {
    for (const e of es) {
      eachBinding(e, (p, h) => {
        const f = firstHash.get(p);
        if (f === undefined) firstHash.set(p, h);
        else if (f !== h) disputed.add(p);
      });
    }
  }
  return disputed;
}

/** Drops every entry of a signer that made two different claims for one resolved derivation. */
function dropEquivocations(nodes: ReadonlyMap<string, Node>, problems: Problem[]): Map<string, Entry[]> {
  const live = new Map<string, Entry[]>();
  for (const [u, n] of nodes) {
    if (n.entries.length <= 1) {
      live.set(u, n.entries as Entry[]);
      continue;
    }
    const bySigner = new Map<string, Entry[]>();
    for (const e of n.entries) {
      const k = `${e.rdrvHash}\0${e.signer}`;
      const l = bySigner.get(k);
      if (l) l.push(e);
      else bySigner.set(k, [e]);
    }
    const keep: Entry[] = [];
    for (const l of bySigner.values()) {
      // identical claims (the same statement under other hints, or re-signed) are one entry
      const m = new Map<string, Entry>();
      if (l.length === 1) m.set('', l[0] as Entry);
      else for (const e of l) if (!m.has(assertionKey(e))) m.set(assertionKey(e), e);
      const es = [...m.values()];
      if (es.length === 1) keep.push(es[0] as Entry);
      else {
        const e = es[0] as Entry;
        problems.push({
          drv: u,
          code: 'equivocation',
          resolvedDrv: e.rdrvPath,
          signer: e.signer,
          detail: `${e.signer} signed ${es.length} different claims for resolved derivation ${e.rdrvPath} (${es.map((x) => x.where).join(', ')}); none of them counts`,
        });
      }
    }
    live.set(u, keep);
  }
  return live;
}

interface Dispute {
  readonly path: string;
  /** Hashes whose claimants could satisfy the policy somewhere, sorted. */
  readonly viable: readonly string[];
}

export function decide(input: DecideInput): Verdict {
  const { target, required, order, nodes, trust } = input;
  const problems: Problem[] = [];
  const targetNode = nodes.get(target) as Node;
  const empty = { world: {}, entries: [] };
  if (targetNode.fod) {
    const f = targetNode.fod;
    return {
      verified: true,
      outputs: { out: f.path },
      signers: [],
      candidates: 1,
      world: { [f.path]: { ...(f.sha256 ? { narSha256: f.sha256 } : {}), producerDrv: target } },
      entries: [],
      problems: [],
    };
  }
  const live = dropEquivocations(nodes, problems);
  const seed = input.settled;
  const settledAt = (u: string): boolean => u !== target && seed?.live.has(u) === true;

  // Which hashes each disputed path is given, by which entries (a first pass finds the disputes).
  const disputed = disputedPaths(live.values());
  // seeded: only a dispute-free graph whose new claims agree with every settled binding (Settled)
  if (seed && (disputed.size > 0 || !agreesWith(live, seed, settledAt))) {
    return { verified: false, outputs: {}, signers: [], candidates: 0, ...empty, problems: [] };
  }
  const claimed = new Map<string, Map<string, Entry[]>>();
  if (disputed.size > 0) {
    for (const u of order) {
      for (const e of live.get(u) ?? []) {
        eachBinding(e, (p, h) => {
          if (!disputed.has(p)) return;
          const m = claimed.get(p) ?? new Map<string, Entry[]>();
          const l = m.get(h);
          if (l) l.push(e);
          else m.set(h, [e]);
          claimed.set(p, m);
        });
      }
    }
  }
  // A hash for a disputed path is viable only if, at some derivation whose entries mention the
  // path, the signers of the entries compatible with it (same hash, or not mentioning the path)
  // satisfy the policy: any B using it needs that (trust is monotone).
  const fodProducer = new Map<string, string>();
  for (const [u, n] of nodes) if (n.fod) fodProducer.set(n.fod.path, u);
  const disputes: Dispute[] = [];
  for (const [p, m] of [...claimed].sort((a, b) => byStr(a[0], b[0]))) {
    if (m.size < 2) continue;
    const mentioners = new Set<string>();
    for (const es of m.values()) for (const e of es) mentioners.add(e.udrv);
    // an output's content must also be claimed by an entry of the derivation that produces it
    const producer = [...m.values()].flat().find((e) => [...e.outputs.values()].some((o) => o.path === p))?.udrv;
    const viable: string[] = [];
    for (const h of [...m.keys()].sort(byStr)) {
      if (producer !== undefined && !(m.get(h) as Entry[]).some((e) => e.udrv === producer && hashFor(e, p) === h)) continue;
      for (const u of [...mentioners].sort(byStr)) {
        const signers = new Set<string>();
        for (const e of live.get(u) ?? []) {
          const x = hashFor(e, p);
          if (x === undefined || x === h) signers.add(e.signer);
        }
        if (satisfies(trust, signers)) {
          viable.push(h);
          break;
        }
      }
    }
    disputes.push({ path: p, viable });
    const who = [...m].map(([h, es]) => `${h} by ${[...new Set(es.map((e) => e.signer))].sort().join(', ')}`).join('; ');
    const drv = producer ?? fodProducer.get(p) ?? ([...mentioners].sort(byStr)[0] as string);
    if (viable.length === 0) {
      problems.push({
        drv,
        code: 'content-disputed',
        detail: `signers disagree on the content of ${p} (${who}); no content is claimed by signers that satisfy ${describeTrust(trust)}, so no claim that binds it counts`,
      });
    } else if (viable.length < m.size) {
      problems.push({
        drv,
        code: 'content-disputed',
        detail: `signers disagree on the content of ${p} (${who}); only ${viable.join(', ')} can meet the policy`,
      });
    }
  }

  // The worlds: one viable hash per disputed path. Seeds first (each identity's own view),
  // then every combination in (path, hash) order, up to the bound.
  const branching = disputes.filter((d) => d.viable.length > 1);
  const fixed = new Map<string, string | null>();
  for (const d of disputes) if (d.viable.length <= 1) fixed.set(d.path, d.viable[0] ?? null);
  let product = 1;
  for (const d of branching) product = Math.min(product * d.viable.length, Number.MAX_SAFE_INTEGER);
  const identities = new Set<string>();
  for (const es of live.values()) for (const e of es) identities.add(e.signer);
  const worlds: number[][] = [];
  const seen = new Set<string>();
  const addWorld = (w: number[]): void => {
    const k = w.join(',');
    if (seen.has(k) || worlds.length >= input.maxWorlds) return;
    seen.add(k);
    worlds.push(w);
  };
  const held = input.held;
  if (held) addWorld(branching.map((d) => Math.max(0, d.viable.indexOf(held.get(d.path) ?? ''))));
  for (const id of [...identities].sort(byStr)) {
    addWorld(
      branching.map((d) => {
        const own = new Set<string>();
        for (const [h, es] of claimed.get(d.path) as Map<string, Entry[]>) if (es.some((e) => e.signer === id)) own.add(h);
        const mine = d.viable.filter((h) => own.has(h));
        return mine.length === 1 ? d.viable.indexOf(mine[0] as string) : 0;
      }),
    );
  }
  for (let n = 0; n < product && worlds.length < input.maxWorlds; n++) {
    let rest = n;
    addWorld(
      branching.map((d) => {
        const i = rest % d.viable.length;
        rest = Math.floor(rest / d.viable.length);
        return i;
      }),
    );
  }

  // Which outputs of each udrv its users need (the keys their DepRefs use).
  const usedOuts = new Map<string, { outs: string; names: string[] }[]>();
  for (const es of live.values()) {
    for (const e of es) {
      for (const d of e.deps) {
        const outs = d.key.slice(0, d.key.indexOf('='));
        const l = usedOuts.get(d.drv);
        if (!l) usedOuts.set(d.drv, [{ outs, names: outs.split(',') }]);
        else if (!l.some((x) => x.outs === outs)) l.push({ outs, names: outs.split(',') });
      }
    }
  }

  // Which entries can meet each dependency resolution (the same in every world).
  const producers = new Map<string, Map<string, Entry[]>>();
  for (const [u, outsSets] of usedOuts) {
    const idx = new Map<string, Entry[]>();
    for (const e of live.get(u) ?? []) {
      for (const { outs, names } of outsSets) {
        const k = names.length === 1 ? `${outs}=${e.outputs.get(outs)?.path ?? ''}` : `${outs}=${names.map((x) => e.outputs.get(x)?.path ?? '').join(',')}`;
        const l = idx.get(k);
        if (l) l.push(e);
        else idx.set(k, [e]);
      }
    }
    producers.set(u, idx);
  }

  let candidates = 0;
  let firstFailure: Problem[] | undefined;
  const fodOf = (u: string): FodLeaf | undefined => nodes.get(u)?.fod ?? seed?.fod.get(u);
  const isFod = (u: string): boolean => fodOf(u) !== undefined;
  // below the settled boundary (only the chosen claims' walk goes there): the settled claims
  const producersOf = (d: DepRef): readonly Entry[] => producers.get(d.drv)?.get(d.key) ?? (seed ? settledProducers(seed, d) : []);
  const liveOf = (u: string): readonly Entry[] => live.get(u) ?? seed?.live.get(u) ?? [];
  for (const w of worlds) {
    const allowed = new Map(fixed);
    for (const [i, d] of branching.entries()) allowed.set(d.path, d.viable[w[i] as number] as string);
    const consistent = (e: Entry): boolean =>
      allowed.size === 0 ||
      eachBinding(e, (p, h) => {
        const a = allowed.get(p);
        return a === undefined || a === h;
      });
    // Votes, bottom-up (README "Trust semantics", trust per output map): a claim counts iff every
    // dependency resolution it uses is backed, either by the counting claims that give exactly
    // that output map (the used outputs at those paths) meeting the policy, or by a counting
    // claim of its own signer for that map (its own thread: divergence that converges).
    const counting = new Set<Entry>(seed?.counting);
    const trustedMemo = new Map<string, Map<string, boolean>>();
    const trusted = (d: DepRef): boolean => {
      let m = trustedMemo.get(d.drv);
      if (!m) {
        m = new Map();
        trustedMemo.set(d.drv, m);
      }
      let t = m.get(d.key);
      if (t === undefined) {
        const signers = new Set<string>();
        for (const f of producersOf(d)) if (counting.has(f)) signers.add(f.signer);
        t = satisfies(trust, signers);
        m.set(d.key, t);
      }
      return t;
    };
    const own = (d: DepRef, signer: string): boolean => producersOf(d).some((f) => f.signer === signer && counting.has(f));
    const backed = (e: Entry): boolean => e.deps.every((d) => isFod(d.drv) || trusted(d) || own(d, e.signer));
    for (const u of order) {
      if (isFod(u) || settledAt(u)) continue;
      for (const e of live.get(u) ?? []) if (consistent(e) && backed(e)) counting.add(e);
    }
    // candidate targets: the required outputs of consistent target claims, in hash order
    const byCandidate = new Map<string, { outputs: OutputMap; entries: Entry[] }>();
    for (const e of live.get(target) ?? []) {
      if (!consistent(e) || !required.every((o) => e.outputs.has(o))) continue;
      const outputs: OutputMap = new Map(required.map((o) => [o, e.outputs.get(o) as { path: string; sha256: string }]));
      const k = claimKey(outputs);
      const c = byCandidate.get(k) ?? { outputs, entries: [] };
      c.entries.push(e);
      byCandidate.set(k, c);
    }
    const failing: Problem[] = [];
    let supportedCandidates = 0;
    let supported: Set<Entry> | undefined;
    for (const [, cand] of [...byCandidate].sort((a, b) => byStr(a[0], b[0]))) {
      const signers = new Set<string>();
      for (const e of cand.entries) if (counting.has(e)) signers.add(e.signer);
      if (satisfies(trust, signers)) {
        const entries = chosen(cand.entries, counting, trusted, producersOf, isFod);
        return {
          verified: true,
          outputs: Object.fromEntries([...cand.outputs].map(([n, v]) => [n, v.path])),
          signers: [...new Set(entries.map((e) => e.signer))].sort(byStr),
          candidates: [...byCandidate.values()].filter((x) => x.entries.some((e) => counting.has(e))).length,
          world: worldOf(entries, fodOf, liveOf, counting, trust),
          entries,
          problems: [],
          ...(disputed.size === 0 ? { settled: settle(target, nodes, live, counting, seed) } : {}),
        };
      }
      // why not: only now the (cheaper, laut's) support relation is needed
      supported ??= supportedEntries(order, live, consistent, producersOf, isFod);
      if (!cand.entries.some((e) => supported?.has(e))) continue;
      supportedCandidates++;
      const idle = [...new Set(cand.entries.filter((e) => supported?.has(e) && !counting.has(e) && !signers.has(e.signer)).map((e) => e.signer))].sort(byStr);
      failing.push({
        drv: target,
        code: 'threshold-not-met',
        detail: `signed by {${[...signers].sort(byStr).join(', ')}}; the policy needs ${describeTrust(trust)}: ${missing(trust, signers)}${idle.length > 0 ? ` (the claims of {${idle.join(', ')}} do not count: an input they use is vouched for neither under the policy nor by their own signer)` : ''}`,
      });
      for (const p of unbacked(cand.entries, counting, supported, trusted, own, producersOf, isFod, trust)) failing.push(p);
    }
    candidates = Math.max(candidates, supportedCandidates);
    if (supportedCandidates === 0 && (live.get(target) ?? []).length > 0) {
      failing.push({
        drv: target,
        code: 'dependency-unsupported',
        detail: `no claim for the target rests on one consistent set of claims for all its inputs${branching.length > 0 ? ' in this world' : ''}`,
      });
    }
    firstFailure ??= failing;
  }
  if (worlds.length < product) {
    problems.push({
      drv: target,
      code: 'bound-hit',
      detail: `${product} assignments of disputed contents (worlds) over ${branching.length} paths; only ${worlds.length} were tried (policy maxResolutions)`,
    });
  }
  return { verified: false, outputs: {}, signers: [], candidates, ...empty, problems: [...(firstFailure ?? []), ...problems] };
}

/** laut's support: a consistent claim whose every dependency resolution some supported claim meets (for diagnostics). */
function supportedEntries(
  order: readonly string[],
  live: ReadonlyMap<string, readonly Entry[]>,
  consistent: (e: Entry) => boolean,
  producersOf: (d: DepRef) => readonly Entry[],
  isFod: (u: string) => boolean,
): Set<Entry> {
  const supported = new Set<Entry>();
  for (const u of order) {
    if (isFod(u)) continue;
    for (const e of live.get(u) ?? []) {
      if (consistent(e) && e.deps.every((d) => isFod(d.drv) || producersOf(d).some((f) => supported.has(f)))) supported.add(e);
    }
  }
  return supported;
}

/**
 * The claims a verified candidate rests on: its counting target claims and, for each
 * dependency resolution, the counting claims that back it (all of that map's when they meet
 * the policy, else the consumer's signer's own). Iterative: closures are deep.
 */
function chosen(
  roots: readonly Entry[],
  counting: ReadonlySet<Entry>,
  trusted: (d: DepRef) => boolean,
  producersOf: (d: DepRef) => readonly Entry[],
  isFod: (u: string) => boolean,
): Entry[] {
  const inJ = new Set<Entry>();
  const stack = roots.filter((e) => counting.has(e));
  while (stack.length > 0) {
    const e = stack.pop() as Entry;
    if (inJ.has(e)) continue;
    inJ.add(e);
    for (const d of e.deps) {
      if (isFod(d.drv)) continue;
      const all = trusted(d);
      for (const f of producersOf(d)) if (counting.has(f) && (all || f.signer === e.signer) && !inJ.has(f)) stack.push(f);
    }
  }
  return [...inJ];
}

/** For a failing candidate: each dependency resolution that a supported claim uses but nothing backs, once, with who signed it. */
function unbacked(
  roots: readonly Entry[],
  counting: ReadonlySet<Entry>,
  supported: ReadonlySet<Entry>,
  trusted: (d: DepRef) => boolean,
  own: (d: DepRef, signer: string) => boolean,
  producersOf: (d: DepRef) => readonly Entry[],
  isFod: (u: string) => boolean,
  trust: TrustNode,
): Problem[] {
  const out: Problem[] = [];
  const seen = new Set<Entry>();
  const reported = new Set<string>();
  const stack = roots.filter((e) => supported.has(e) && !counting.has(e));
  while (stack.length > 0) {
    const e = stack.pop() as Entry;
    if (seen.has(e)) continue;
    seen.add(e);
    for (const d of e.deps) {
      if (isFod(d.drv) || trusted(d) || own(d, e.signer)) continue;
      const k = `${d.drv}\0${d.key}\0${e.signer}`;
      if (!reported.has(k)) {
        reported.add(k);
        const signers = new Set<string>();
        for (const f of producersOf(d)) if (counting.has(f)) signers.add(f.signer);
        out.push({
          drv: d.drv,
          code: 'threshold-not-met',
          detail: `outputs ${d.key} (used by ${e.signer}'s claim for ${e.udrv}) signed by {${[...signers].sort(byStr).join(', ')}}; the policy needs ${describeTrust(trust)}: ${missing(trust, signers)}, and ${e.signer} did not sign them itself (a vote counts only for the output map its consumers use)`,
        });
      }
      for (const f of producersOf(d)) if (supported.has(f) && !counting.has(f) && !seen.has(f)) stack.push(f);
    }
  }
  return out;
}

/**
 * The paths the chosen entries bind, each with its one hash and the udrv that produces it.
 * An output is in it only where the counting claims at its producer that give it meet the
 * policy: an output backed only by its signer's own thread (a divergent build input) or that
 * only some signers give (another content-addressed `dev`) is attested by nobody the policy
 * trusts, so the last mile refuses it if the consumer would install it.
 */
function worldOf(
  entries: readonly Entry[],
  fodOf: (u: string) => FodLeaf | undefined,
  liveOf: (u: string) => readonly Entry[],
  counting: ReadonlySet<Entry>,
  trust: TrustNode,
): Record<string, WorldPath> {
  const producer = new Map<string, string>();
  const hash = new Map<string, string | undefined>();
  const vouched = new Map<string, Map<string, Set<string>>>();
  const attested = (u: string, path: string): boolean => {
    let m = vouched.get(u);
    if (!m) {
      m = new Map();
      for (const f of liveOf(u)) {
        if (!counting.has(f)) continue;
        for (const o of f.outputs.values()) {
          const s = m.get(o.path);
          if (s) s.add(f.signer);
          else m.set(o.path, new Set([f.signer]));
        }
      }
      vouched.set(u, m);
    }
    return satisfies(trust, m.get(path) ?? new Set());
  };
  const unattested = new Set<string>();
  for (const e of entries) {
    for (const o of e.outputs.values()) {
      if (attested(e.udrv, o.path)) producer.set(o.path, e.udrv);
      else unattested.add(o.path);
    }
    for (const d of e.deps) {
      const f = fodOf(d.drv);
      if (f) {
        producer.set(f.path, d.drv);
        if (!hash.has(f.path) || f.sha256 !== undefined) hash.set(f.path, f.sha256);
      }
    }
  }
  for (const e of entries) eachBinding(e, (p, h) => void (unattested.has(p) && !producer.has(p) ? undefined : hash.set(p, h)));
  const out: Record<string, WorldPath> = {};
  // store paths are ASCII: the default sort is byte order
  for (const p of [...hash.keys()].sort()) {
    const h = hash.get(p);
    const prod = producer.get(p);
    out[p] = h === undefined ? (prod === undefined ? {} : { producerDrv: prod }) : prod === undefined ? { narSha256: h } : { narSha256: h, producerDrv: prod };
  }
  return out;
}

/** Whether every claim gathered in this run (not settled) binds each path the settled claims bind to their hash. */
function agreesWith(live: ReadonlyMap<string, readonly Entry[]>, seed: Settled, settledAt: (u: string) => boolean): boolean {
  for (const [u, es] of live) {
    if (settledAt(u)) continue;
    for (const e of es) {
      if (
        !eachBinding(e, (p, h) => {
          const s = seed.bindings.get(p);
          return s === undefined || s === h;
        })
      )
        return false;
    }
  }
  return true;
}

/** The settled claims at a dependency that give exactly the output map it names (decide's producer index, for a derivation below the boundary). */
function settledProducers(seed: Settled, d: DepRef): Entry[] {
  const outs = d.key.slice(0, d.key.indexOf('=')).split(',');
  return (seed.live.get(d.drv) ?? []).filter((e) => outs.every((o) => e.outputs.has(o)) && depKey(e.outputs, outs) === d.key);
}

/** A verified, dispute-free verdict's claims, merged over the seed it started from (Settled); never the target's. */
function settle(
  target: string,
  nodes: ReadonlyMap<string, Node>,
  live: ReadonlyMap<string, readonly Entry[]>,
  counting: ReadonlySet<Entry>,
  seed: Settled | undefined,
): Settled {
  const l = new Map(seed?.live);
  const fod = new Map(seed?.fod);
  const bindings = new Map(seed?.bindings);
  for (const [u, es] of live) {
    if (u === target) continue;
    const f = nodes.get(u)?.fod;
    if (f) fod.set(u, f);
    l.set(u, es);
    for (const e of es) eachBinding(e, (p, h) => void bindings.set(p, h));
  }
  return { live: l, counting, fod, bindings };
}
