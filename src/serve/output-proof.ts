import type { Derivation } from '../nix/derivation.js';

/**
 * DESIGN.md "the target": `path` counts as output `output` of the unresolved derivation only
 * when the `.drv` declares it there (input-addressed, fixed) or, for an output whose path the
 * `.drv` leaves open (floating CA, deferred), when the verified world gives it that path.
 * Nix's recorded deriver, a narinfo's `Deriver:` and a DerivationOutputs row are hints.
 */
export function isProvenOutput(drv: Derivation, output: string, path: string, verifiedOutputs: Readonly<Record<string, string>>): boolean {
  const o = drv.outputs.get(output);
  if (!o) return false;
  if (o.path !== '') return o.path === path && verifiedOutputs[output] === path;
  return verifiedOutputs[output] === path;
}
