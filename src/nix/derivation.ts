import { BuildtraceError } from '../errors.js';

/** One output as the ATerm spells it: path, hash algorithm (with "r:" for NAR hashing), hash. */
export interface DerivationOutput {
  readonly path: string;
  readonly hashAlgo: string;
  readonly hash: string;
}

/**
 * A derivation exactly as its ATerm says. Strings are byte strings (latin1:
 * one char per byte) so arbitrary bytes survive a parse/serialize round trip.
 */
export interface Derivation {
  readonly outputs: ReadonlyMap<string, DerivationOutput>;
  readonly inputDrvs: ReadonlyMap<string, readonly string[]>;
  readonly inputSrcs: readonly string[];
  readonly platform: string;
  readonly builder: string;
  readonly args: readonly string[];
  readonly env: ReadonlyMap<string, string>;
}

/**
 * ia: input-addressed, output paths known. deferred: input-addressed but depends on
 * floating CA outputs, paths known only after resolution. fixed: fixed-output (FOD).
 * floating: floating content-addressed. impure: impure derivation.
 */
type DerivationKind = 'ia' | 'deferred' | 'fixed' | 'floating' | 'impure';

type OutputKind = DerivationKind;

export function outputKind(o: DerivationOutput): OutputKind {
  if (o.hash === 'impure') return 'impure';
  if (o.hash !== '') return 'fixed';
  if (o.hashAlgo !== '') return 'floating';
  if (o.path !== '') return 'ia';
  return 'deferred';
}

export function derivationKind(drv: Derivation, subject = 'derivation'): DerivationKind {
  let kind: DerivationKind | undefined;
  for (const [name, o] of drv.outputs) {
    const k = outputKind(o);
    if (kind === undefined) kind = k;
    else if (kind !== k) {
      throw new BuildtraceError('DERIVATION_INVALID', `${subject}: output ${name} is ${k} but another output is ${kind}`, { subject });
    }
  }
  if (kind === undefined) throw new BuildtraceError('DERIVATION_INVALID', `${subject}: has no outputs`, { subject });
  if (kind === 'fixed' && (drv.outputs.size !== 1 || !drv.outputs.has('out'))) {
    throw new BuildtraceError('DERIVATION_INVALID', `${subject}: a fixed-output derivation must have exactly one output "out"`, { subject });
  }
  return kind;
}

/** The derivation's name: env "name", which is what Nix uses for output and .drv names. */
export function derivationName(drv: Derivation, subject = 'derivation'): string {
  const name = drv.env.get('name');
  if (name === undefined) throw new BuildtraceError('DERIVATION_INVALID', `${subject}: env has no "name"`, { subject });
  return name;
}

/** Splits an output hashAlgo ("r:sha256", "sha256", "text:sha256", "git:sha1") into method and algo. */
export function parseOutputHashAlgo(hashAlgo: string, subject = 'output'): { method: 'flat' | 'recursive' | 'text' | 'git'; algo: string } {
  let method: 'flat' | 'recursive' | 'text' | 'git' = 'flat';
  let algo = hashAlgo;
  if (algo.startsWith('r:')) {
    method = 'recursive';
    algo = algo.slice(2);
  } else if (algo.startsWith('text:')) {
    method = 'text';
    algo = algo.slice(5);
  } else if (algo.startsWith('git:')) {
    method = 'git';
    algo = algo.slice(4);
  }
  if (!['md5', 'sha1', 'sha256', 'sha512'].includes(algo)) {
    throw new BuildtraceError('DERIVATION_INVALID', `${subject}: unknown output hash algorithm ${JSON.stringify(hashAlgo)}`, { subject });
  }
  return { method, algo };
}
