import type { Problem } from './claims.js';
import type { TrustNode } from './trust-tree.js';
import { inputsFirst } from './walk.js';
import { decide, type Node, type Verdict } from './world.js';

/** The claims a run gathered over a closure, before any verdict: what `decide` reads, with the graph's edges. */
export interface ClosureGraph {
  readonly target: string;
  /** Every udrv of the closure, inputs before their users. */
  readonly order: readonly string[];
  readonly nodes: ReadonlyMap<string, Node>;
  readonly inputsOf: (drv: string) => readonly string[];
  readonly outputsOf: (drv: string) => readonly string[];
}

/**
 * Each derivation of a closure decided as a target of its own (all its outputs), by the
 * verifier's one `decide` over that derivation's sub-closure. Memoised; `nodes` may replace the
 * graph's claims (trace-verify plan decides hypothetical claim sets over the same graph).
 */
export class Positions {
  private readonly memo = new Map<string, Verdict>();

  constructor(
    private readonly graph: ClosureGraph,
    private readonly trust: TrustNode,
    private readonly maxWorlds: number,
    private readonly nodes: ReadonlyMap<string, Node> = graph.nodes,
  ) {}

  at(drv: string): Verdict {
    let v = this.memo.get(drv);
    if (!v) {
      const order = [...inputsFirst(drv, this.graph.inputsOf)];
      const nodes = new Map<string, Node>();
      for (const u of order) nodes.set(u, this.nodes.get(u) ?? { drv: u, entries: [] });
      v = decide({ target: drv, required: this.graph.outputsOf(drv), order, nodes, trust: this.trust, maxWorlds: this.maxWorlds });
      this.memo.set(drv, v);
    }
    return v;
  }

  verified(drv: string): boolean {
    return this.at(drv).verified;
  }

  /** A failing derivation whose every input verifies on its own: what blocks is here, not below. */
  lowestFailing(drv: string): boolean {
    return !this.verified(drv) && this.graph.inputsOf(drv).every((d) => this.verified(d));
  }
}

/**
 * Marks each problem of a failed run blocking or a note. Blocking: a problem at a lowest
 * failing derivation (it fails on its own though all its inputs verify), or one about no
 * derivation of the graph. A note: a problem at a derivation that verifies anyway (say, a
 * non-admitted signer's line beside enough admitted ones), or above a lower failure.
 */
export function markBlocking(problems: readonly Problem[], positions: Positions, inGraph: (drv: string) => boolean): Problem[] {
  // target-unproven: the asked-for path is not what the target's claims give, whatever the positions say
  const marked = problems.map((p) => ({ ...p, blocking: p.code === 'target-unproven' || !inGraph(p.drv) || positions.lowestFailing(p.drv) }));
  // a run that fails though every position verifies on its own (the target's outputs, its world): all of it blocks
  return marked.some((p) => p.blocking) ? marked : marked.map((p) => ({ ...p, blocking: true }));
}
