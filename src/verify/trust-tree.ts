/**
 * The trust tree (DESIGN.md "trust semantics"): key names and thresholds over them, and
 * whether a set of signers satisfies it. Its own module: the trust policy and a TEE policy's
 * image policy (src/tee/tee-policy.ts) both hold one.
 */
export type TrustNode = string | { readonly threshold: number; readonly of: readonly TrustNode[] };

/** Whether the set of signers (key names) satisfies the trust tree. */
export function satisfies(n: TrustNode, signers: ReadonlySet<string>): boolean {
  if (typeof n === 'string') return signers.has(n);
  let ok = 0;
  for (const c of n.of) if (satisfies(c, signers) && ++ok >= n.threshold) return true;
  return false;
}

export function describeTrust(n: TrustNode): string {
  if (typeof n === 'string') return n;
  if (n.of.length === 1) return describeTrust(n.of[0] as TrustNode);
  if (n.threshold === n.of.length) return n.of.map((c) => (typeof c === 'string' ? c : `(${describeTrust(c)})`)).join(' and ');
  return `${n.threshold} of {${n.of.map(describeTrust).join(', ')}}`;
}

/** Why a signer set falls short: the unsatisfied members of the top node. */
export function missing(n: TrustNode, signers: ReadonlySet<string>): string {
  if (typeof n === 'string') return signers.has(n) ? '' : n;
  const have = n.of.filter((c) => satisfies(c, signers)).length;
  return `${n.threshold - have} more of {${n.of
    .filter((c) => !satisfies(c, signers))
    .map(describeTrust)
    .join(', ')}}`;
}
