/**
 * A deliberately naive reference model of the trust verdict, written from the rules, not from
 * src/verify/world.ts: try every set B of claims and accept if one satisfies them all. It is
 * exponential on purpose (nothing clever to get wrong); test/differential.test.ts runs it on
 * small synthetic graphs and requires decide() to agree. Rules cite /work/shared/DESIGN.md
 * "Verification (laut semantics, extended and made sound)" and README "Trust semantics".
 */
import type { Entry } from '../src/verify/claims.js';
import type { TrustNode } from '../src/verify/trust-tree.js';
import type { Node } from '../src/verify/world.js';

export interface ModelInput {
  readonly target: string;
  readonly required: readonly string[];
  readonly nodes: ReadonlyMap<string, Node>;
  readonly trust: TrustNode;
}

/** "The policy is a tree of thresholds over keys": at least `threshold` children hold. */
export function holds(n: TrustNode, signers: ReadonlySet<string>): boolean {
  if (typeof n === 'string') return signers.has(n);
  return n.of.filter((c) => holds(c, signers)).length >= n.threshold;
}

/** "A claim is: a resolved derivation, the signer, the atomic output map, and the NAR hash of every input it consumed." */
function said(e: Entry): string {
  const outs = [...e.outputs].map(([n, o]) => `${n}=${o.path}:${o.sha256}`).sort();
  const ins = [...e.inputs].map(([p, h]) => `${p}:${h}`).sort();
  return `${outs.join(';')}|${ins.join(';')}`;
}

/** The outputs of `e` a dependency reference uses, written like DepRef.key: `out,dev=path1,path2`. */
function projection(e: Entry, key: string): string {
  const names = key.slice(0, key.indexOf('=')).split(',');
  return `${names.join(',')}=${names.map((n) => e.outputs.get(n)?.path ?? '\u0000missing').join(',')}`;
}

/**
 * "One key with two different claims for one rdrv is equivocation: its votes there don't
 * count." Identical claims are one claim ("A key counts once per derivation").
 */
function withoutEquivocation(nodes: ReadonlyMap<string, Node>): Entry[] {
  const out: Entry[] = [];
  for (const n of nodes.values()) {
    const bySignerRdrv = new Map<string, Map<string, Entry>>();
    for (const e of n.entries) {
      const k = `${e.rdrvHash} ${e.signer}`;
      const m = bySignerRdrv.get(k) ?? new Map<string, Entry>();
      if (!m.has(said(e))) m.set(said(e), e);
      bySignerRdrv.set(k, m);
    }
    for (const m of bySignerRdrv.values()) if (m.size === 1) out.push(...m.values());
  }
  return out;
}

/** Does the set B of claims make the target verify? Each rule on its own. */
function accepts(B: readonly Entry[], input: ModelInput): boolean {
  const { nodes, trust, target, required } = input;
  const isFod = (u: string): boolean => nodes.get(u)?.fod !== undefined;

  // "Never mix outputs of different claims" and one consistent world: no store path with two
  // NAR hashes among B's outputs and listed inputs (README "Trust semantics", condition 2).
  const hashOf = new Map<string, string>();
  for (const e of B) {
    const bound: [string, string][] = [...[...e.outputs.values()].map((o): [string, string] => [o.path, o.sha256]), ...e.inputs];
    for (const [p, h] of bound) {
      if (hashOf.has(p) && hashOf.get(p) !== h) return false;
      hashOf.set(p, h);
    }
  }

  // Closed: every dependency resolution of a claim in B is met by a fixed-output leaf or by
  // one claim in B whose used outputs are at exactly those paths (laut).
  for (const e of B) {
    for (const d of e.deps) {
      if (isFod(d.drv)) continue;
      if (!B.some((f) => f.udrv === d.drv && projection(f, d.key) === d.key)) return false;
    }
  }

  // "A signer's vote at a derivation counts only for the output map the chosen consumers use
  // and only together with the dependency claims that its own statement is consistent with":
  // every claim in B uses, for each dependency, an output map that either the claims in B
  // giving exactly that map vouch for under the policy, or that its own signer gives in B
  // ("divergence upstream is accepted only where it changes the downstream rdrv and converges
  // after it").
  for (const e of B) {
    for (const d of e.deps) {
      if (isFod(d.drv)) continue;
      const givers = B.filter((f) => f.udrv === d.drv && projection(f, d.key) === d.key);
      const vouched = holds(trust, new Set(givers.map((f) => f.signer)));
      const ownChain = givers.some((f) => f.signer === e.signer);
      if (!vouched && !ownChain) return false;
    }
  }

  // "The target is the set of outputs of the unresolved derivation the consumer evaluated":
  // some map of the required outputs that the claims in B for the target give, signed by
  // identities that satisfy the policy.
  const byMap = new Map<string, Set<string>>();
  for (const e of B) {
    if (e.udrv !== target || !required.every((o) => e.outputs.has(o))) continue;
    const k = required.map((o) => `${o}=${e.outputs.get(o)?.path}:${e.outputs.get(o)?.sha256}`).join(';');
    const s = byMap.get(k) ?? new Set<string>();
    s.add(e.signer);
    byMap.set(k, s);
  }
  return [...byMap.values()].some((s) => holds(trust, s));
}

/** The model's verdict: does any set of claims satisfy every rule? */
export function modelVerifies(input: ModelInput): boolean {
  // "FODs are supported by their declared hash": a fixed-output target needs no signature.
  if (input.nodes.get(input.target)?.fod) return true;
  const claims = withoutEquivocation(input.nodes);
  if (claims.length > 16) throw new Error(`the model is exponential: ${claims.length} claims is too many`);
  for (let mask = 1; mask < 1 << claims.length; mask++) {
    const B = claims.filter((_, i) => (mask >> i) & 1);
    if (accepts(B, input)) return true;
  }
  return false;
}
