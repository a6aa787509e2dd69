import { claimKey, type Entry } from '../verify/claims.js';
import { type ClosureGraph, Positions } from '../verify/positions.js';
import { describeTrust, missing, satisfies, type TrustNode } from '../verify/trust-tree.js';
import type { Node } from '../verify/world.js';

/**
 * The minimal rebuild set (DESIGN.md "Changing trust over time"), decided by the verifier's own
 * `decide` over hypothetical claim sets. Pure.
 *
 * Start from the claims the next policy admits. Repeatedly: a derivation that fails under the
 * next policy and whose every input verifies (or is already to be rebuilt) is a lowest failing
 * derivation: it joins the rebuild set. A rebuilt derivation is assumed to be re-traced by every
 * identity the next policy counts, with the content it has today (a reproducing rebuild) — or,
 * when a next-admitted builder already traced other content for it, with that content (the
 * rebuild did not reproduce). Everything above that verifies again under this assumption is
 * "saved if reproducible": a content-addressed consumer's resolved derivation is unchanged, an
 * input-addressed consumer's traces bind the same input NAR hash, so their existing traces count
 * again. What still fails joins the set on the next round (its own signers fall short, or an
 * input's content changes under it). The fixpoint is the set.
 */

interface RebuildInput {
  readonly current: ClosureGraph;
  readonly next: ClosureGraph;
  /** Each derivation as its own target under the current and the next policy. */
  readonly currentAt: Positions;
  readonly nextAt: Positions;
  readonly nextTrust: TrustNode;
  readonly maxWorlds: number;
  /** The next policy's identities whose claims can count (active, admitted). */
  readonly counting: readonly string[];
  /** The next policy's name for a current identity (the same key), if it has one. */
  readonly toNext: (currentIdentity: string) => string | undefined;
}

type RebuildKind = 'signers' | 'input-changed' | 'input-unknown' | 'unsupported';

export interface RebuildStep {
  readonly drv: string;
  /** 0: lowest failing under the next policy as it is; n: joins once the rebuilds below it are assumed. */
  readonly level: number;
  readonly kind: RebuildKind;
  readonly detail: string;
  /** Inputs in the rebuild set whose content changes or is unknown (kind input-*). */
  readonly inputs: readonly string[];
  /** Set when a next-admitted builder already traced content other than today's for it. */
  readonly notReproduced?: { readonly was: string; readonly now: string };
}

interface RebuildPlan {
  /** Lowest first: by level, then inputs before their users. */
  readonly steps: readonly RebuildStep[];
  /** Failing under the next policy, verifying again if the rebuilds reproduce. */
  readonly saved: ReadonlySet<string>;
}

interface Content {
  /** A claim to assume re-signed, or undefined when the content after a rebuild cannot be predicted. */
  readonly entry: Entry | undefined;
  /** Today's claim, when the derivation verifies under the current policy. */
  readonly was?: Entry;
  readonly notReproduced?: { readonly was: string; readonly now: string };
}

const ASSUMED = 'assumed: a rebuild by the next policy’s builders';

function contentText(e: Entry): string {
  return [...e.outputs]
    .sort((a, b) => (a[0] < b[0] ? -1 : 1))
    .map(([n, o]) => `${n} ${o.path} (NAR sha256 ${o.sha256})`)
    .join(', ');
}

/** What a rebuild of `d` gives: today's content, or what a next-admitted builder already traced instead. */
function contentAfterRebuild(d: string, input: RebuildInput): Content {
  const today = input.currentAt.verified(d) ? input.currentAt.at(d).entries.filter((e) => e.udrv === d) : [];
  const known = new Set(today.map((e) => claimKey(e.outputs)));
  const nextClaims = input.next.nodes.get(d)?.entries ?? [];
  const other = new Map<string, Entry>();
  for (const e of nextClaims) if (!known.has(claimKey(e.outputs))) other.set(claimKey(e.outputs), e);
  const [first] = today;
  if (other.size === 1) {
    const now = [...other.values()][0] as Entry;
    return first ? { entry: now, was: first, notReproduced: { was: contentText(first), now: `${contentText(now)}, traced by ${now.signer}` } } : { entry: now };
  }
  if (other.size > 1) return { entry: undefined, ...(first ? { was: first } : {}) };
  return { entry: first ?? nextClaims[0], ...(first ? { was: first } : {}) };
}

/**
 * A rebuild on top of inputs whose content changed: same output paths (input-addressed inputs)
 * give the same resolved derivation, so the claim is assumed with the new input hashes and its
 * own output reproduced; a moved path (a content-addressed input) changes the resolved
 * derivation, and what it builds cannot be predicted.
 */
function onChangedInputs(c: Content, inputs: readonly Content[]): Content {
  const e = c.entry;
  if (!e) return c;
  const rebound = new Map(e.inputs);
  for (const g of inputs) {
    if (!g.entry || !g.was) return { ...c, entry: undefined };
    for (const [on, o] of g.was.outputs) {
      const now = g.entry.outputs.get(on);
      if (!now || now.path !== o.path) return { ...c, entry: undefined };
      if (rebound.has(o.path)) rebound.set(o.path, now.sha256);
    }
  }
  return { ...c, entry: { ...e, inputs: rebound } };
}

export function planRebuilds(input: RebuildInput): RebuildPlan {
  const { next, nextTrust } = input;
  // the claims the next policy admits, and the current run's claims by identities it still counts
  // (a derivation whose inputs had no next-admitted claim was never resolved under the next policy)
  const counting = new Set(input.counting);
  const base = new Map<string, Node>();
  for (const u of next.order) {
    const n = next.nodes.get(u) ?? input.current.nodes.get(u) ?? { drv: u, entries: [] };
    if (n.fod) {
      base.set(u, n);
      continue;
    }
    const borrowed: Entry[] = [];
    for (const e of input.current.nodes.get(u)?.entries ?? []) {
      const id = input.toNext(e.signer);
      if (id !== undefined && counting.has(id)) borrowed.push(id === e.signer ? e : { ...e, signer: id });
    }
    base.set(u, { drv: u, entries: [...n.entries, ...borrowed] });
  }
  const failing = next.order.filter((u) => !base.get(u)?.fod && !input.nextAt.verified(u));
  const chosen = new Map<string, Content>();
  const steps: RebuildStep[] = [];
  for (let level = 0; ; level++) {
    const nodes = new Map(base);
    for (const [u, c] of chosen) {
      const e = c.entry;
      nodes.set(u, { drv: u, entries: e ? [...counting].map((id) => ({ ...e, signer: id, where: ASSUMED })) : [] });
    }
    const hyp = new Positions(next, nextTrust, input.maxWorlds, nodes);
    const joining = failing.filter((u) => !chosen.has(u) && !hyp.verified(u) && next.inputsOf(u).every((g) => chosen.has(g) || hyp.verified(g)));
    if (joining.length === 0) break;
    for (const u of joining) {
      const own = new Set((base.get(u)?.entries ?? []).map((e) => e.signer));
      const changed = next.inputsOf(u).filter((g) => {
        const c = chosen.get(g);
        return c !== undefined && (c.entry === undefined || c.notReproduced !== undefined);
      });
      const content = onChangedInputs(
        contentAfterRebuild(u, input),
        changed.map((g) => chosen.get(g) as Content),
      );
      chosen.set(u, content);
      const np = content.notReproduced ? { notReproduced: content.notReproduced } : {};
      if (!satisfies(nextTrust, own)) {
        steps.push({
          drv: u,
          level,
          kind: 'signers',
          detail:
            own.size === 0
              ? `no claim the next policy counts; it needs ${describeTrust(nextTrust)}`
              : `signed by {${[...own].sort().join(', ')}} among the identities the next policy counts; it needs ${describeTrust(nextTrust)}: ${missing(nextTrust, own)}`,
          inputs: [],
          ...np,
        });
      } else if (changed.length > 0) {
        const unknown = changed.filter((g) => chosen.get(g)?.entry === undefined);
        steps.push({
          drv: u,
          level,
          kind: unknown.length > 0 ? 'input-unknown' : 'input-changed',
          detail:
            unknown.length > 0
              ? `the content of rebuilt input(s) ${unknown.join(', ')} cannot be predicted, so its traces may not bind it`
              : `rebuilt input(s) ${changed.join(', ')} did not reproduce: its traces bind the content they had before`,
          inputs: changed,
          ...np,
        });
      } else {
        const p = hyp.at(u).problems.find((x) => x.drv === u) ?? hyp.at(u).problems[0];
        steps.push({ drv: u, level, kind: 'unsupported', detail: p ? `${p.code}: ${p.detail}` : 'does not verify under the next policy', inputs: [], ...np });
      }
    }
  }
  const saved = new Set(failing.filter((u) => !chosen.has(u)));
  return { steps, saved };
}
