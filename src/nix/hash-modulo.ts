import { BuildtraceError } from '../errors.js';
import { serializeDerivation } from './aterm.js';
import { derivationKind, derivationName, parseOutputHashAlgo, type Derivation } from './derivation.js';
import { sha256Hex } from './hash.js';
import { makeFixedOutputPath, outputPathName, printStorePath } from './store-path.js';

/**
 * Nix's "hash modulo" (hashDerivationModulo, Nix <= 2.34): the hash that names
 * input-addressed output paths and, until 2.35, realisations ("sha256:<hex>!out").
 */
interface DrvHash {
  /** Per output name: lowercase hex SHA-256. */
  readonly hashes: ReadonlyMap<string, string>;
  /** Deferred when some input is floating CA: the derivation's outputs are unknown until resolved. */
  readonly kind: 'regular' | 'deferred';
}

/** Gives the hash modulo (maskOutputs = false) of an input derivation by its path. */
type InputHashLookup = (drvPath: string) => DrvHash;

export function hashDerivationModulo(drv: Derivation, maskOutputs: boolean, inputHash: InputHashLookup, storeDir = '/nix/store'): DrvHash {
  const kind0 = derivationKind(drv);
  const name = derivationName(drv);
  if (kind0 === 'fixed') {
    const hashes = new Map<string, string>();
    for (const [outName, o] of drv.outputs) {
      const { method, algo } = parseOutputHashAlgo(o.hashAlgo, `output ${outName}`);
      if (method !== 'flat' && method !== 'recursive') {
        throw new BuildtraceError('DERIVATION_INVALID', `fixed output ${outName}: ${method} hashing is not supported`);
      }
      const path = printStorePath(makeFixedOutputPath(method, algo, o.hash, outputPathName(name, outName), [], storeDir));
      hashes.set(outName, sha256Hex(`fixed:out:${o.hashAlgo}:${o.hash}:${path}`));
    }
    return { hashes, kind: 'regular' };
  }
  if (kind0 === 'impure') {
    throw new BuildtraceError('DERIVATION_INVALID', `${name}: impure derivations have no hash modulo`);
  }
  let kind: DrvHash['kind'] = kind0 === 'floating' || kind0 === 'deferred' ? 'deferred' : 'regular';
  const inputs2 = new Map<string, string[]>();
  for (const [drvPath, outs] of drv.inputDrvs) {
    const res = inputHash(drvPath);
    if (res.kind === 'deferred') kind = 'deferred';
    for (const outName of outs) {
      const h = res.hashes.get(outName);
      if (h === undefined) {
        throw new BuildtraceError('DERIVATION_INVALID', `${name}: input ${drvPath} has no output ${JSON.stringify(outName)}`);
      }
      const set = inputs2.get(h) ?? [];
      if (!set.includes(outName)) set.push(outName);
      inputs2.set(h, set);
    }
  }
  const hash = sha256Hex(serializeDerivation(drv, { maskOutputs, inputDrvsOverride: inputs2 }));
  const hashes = new Map<string, string>();
  for (const outName of drv.outputs.keys()) hashes.set(outName, hash);
  return { hashes, kind };
}

/** Memoising helper: `pathDerivationModulo` over a loader of parsed derivations. */
export class DrvHashCache {
  private readonly memo = new Map<string, DrvHash>();
  constructor(
    private readonly load: (drvPath: string) => Derivation,
    private readonly storeDir = '/nix/store',
  ) {}

  forPath = (drvPath: string): DrvHash => {
    let h = this.memo.get(drvPath);
    if (h === undefined) {
      h = hashDerivationModulo(this.load(drvPath), false, this.forPath, this.storeDir);
      this.memo.set(drvPath, h);
    }
    return h;
  };

  /** The hash that names output paths and realisations (maskOutputs = true). */
  masked(drv: Derivation): DrvHash {
    return hashDerivationModulo(drv, true, this.forPath, this.storeDir);
  }
}
