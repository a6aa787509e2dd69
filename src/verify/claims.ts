import { decidedOrThrow } from '../errors.js';
import type { Derivation } from '../nix/derivation.js';
import { parseStorePath } from '../nix/store-path.js';
import type { ParsedStatement } from '../trace/statement.js';
import type { LastMileProblemCode } from './last-mile.js';
import type { TargetProblemCode } from './target.js';

/** Why a position (a derivation, possibly a specific resolution of it) does not verify. */
export type ProblemCode =
  | 'no-bundle'
  | 'signature-invalid'
  | 'key-not-admitted'
  | 'tee-evidence-failed'
  | 'malformed'
  | 'builder-mismatch'
  | 'replayed'
  | 'output-mismatch'
  | 'input-hash-mismatch'
  | 'input-missing'
  | 'dependency-unsupported'
  | 'threshold-not-met'
  | 'equivocation'
  | 'content-disputed'
  | 'bound-hit'
  // a claim by a key the policy marks retired or revoked (trust-policy.ts KeyLifecycle)
  | 'key-retired'
  | 'key-revoked'
  | LastMileProblemCode
  | TargetProblemCode
  | DerivedProblemCode;

/** The links of a derived measurement's chain that can break (src/verify/derived-measurement.ts). */
export type DerivedProblemCode = 'image-self-vouching' | 'image-not-verified' | 'image-unreadable' | 'image-content-mismatch' | 'measurement-not-attested';

export interface Problem {
  readonly drv: string;
  readonly code: ProblemCode;
  readonly detail: string;
  readonly resolvedDrv?: string;
  readonly signer?: string;
  readonly where?: string;
  /** In a failed run's list: whether it blocks the verdict (at a lowest failing derivation) or is a note (positions.ts markBlocking). */
  readonly blocking?: boolean;
}

interface OutputValue {
  readonly path: string;
  /** NAR SHA-256 (hex); undefined only for a flat fixed-output leaf (its NAR hash comes from signed claims). */
  readonly sha256: string | undefined;
}
export type OutputMap = ReadonlyMap<string, OutputValue>;

/** A dependency resolution an entry was made for: these outputs of `drv` at these paths. */
export interface DepRef {
  readonly drv: string;
  /** `out1,out2=path1,path2`: the used outputs (sorted) and the paths chosen for them. */
  readonly key: string;
}

/**
 * One checked claim: a signer identity says that the resolved derivation `rdrvHash` of
 * `udrv`, built from exactly the inputs in `inputs` (path -> NAR sha256), produced `outputs`.
 */
export interface Entry {
  readonly udrv: string;
  readonly rdrvHash: string;
  readonly rdrvPath: string;
  readonly signer: string;
  readonly where: string;
  /** output name -> {path, NAR sha256}, atomic: never mixed with another entry's outputs. */
  readonly outputs: ReadonlyMap<string, { readonly path: string; readonly sha256: string }>;
  /** The input paths of the rdrv the statement lists, with their NAR sha256 (empty for laut's #ca). */
  readonly inputs: ReadonlyMap<string, string>;
  readonly deps: readonly DepRef[];
}

/** How an input path of a resolved derivation is produced. */
export type InputOrigin =
  | { readonly kind: 'output'; readonly drv: string; readonly contentAddressed: boolean; readonly hashes: ReadonlySet<string> }
  | { readonly kind: 'fod'; readonly drv: string; readonly sha256: string | undefined }
  | { readonly kind: 'source' };

export function claimKey(m: OutputMap): string {
  return [...m.entries()]
    .sort((a, b) => (a[0] < b[0] ? -1 : 1))
    .map(([n, v]) => `${n}=${v.path}:${v.sha256 ?? ''}`)
    .join(';');
}

/** The identity of a dependency resolution: which paths the used outputs have (hashes do not change the rdrv). */
export function depKey(m: OutputMap, outs: readonly string[]): string {
  const names = [...outs].sort();
  return `${names.join(',')}=${names.map((n) => m.get(n)?.path ?? '').join(',')}`;
}

/** Everything an entry asserts, for equivocation: outputs and listed inputs. */
export function assertionKey(e: Entry): string {
  const outs = [...e.outputs].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([n, v]) => `${n}=${v.path}:${v.sha256}`);
  const ins = [...e.inputs].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([p, h]) => `${p}:${h}`);
  return `${outs.join(';')}|${ins.join(';')}`;
}

interface ClaimContext {
  readonly udrv: string;
  /** The udrv's name (for the paths of content-addressed outputs). */
  readonly name: string;
  readonly rdrv: Derivation;
  readonly rdrvPath: string;
  readonly rdrvHash: string;
  readonly storeDir: string;
  /** Every input path of the rdrv and where it comes from. */
  readonly inputOrigins: ReadonlyMap<string, InputOrigin>;
  readonly deps: readonly DepRef[];
}

/**
 * Statement x resolution -> checked entry, or the reason it is not one. Pure: the signature
 * is already verified and `signer` is the identity that admitted its key.
 */
export function checkClaim(ctx: ClaimContext, st: ParsedStatement, signer: string, where: string): Entry | Problem {
  const { udrv: drv, rdrvPath: resolvedDrv } = ctx;
  const fail = (code: ProblemCode, detail: string): Problem => ({ drv, code, resolvedDrv, signer, detail, where });
  if (st.resolvedInputHash !== ctx.rdrvHash)
    return {
      drv,
      code: 'replayed',
      resolvedDrv,
      signer,
      detail: `bundle stored under ${ctx.rdrvHash} is for resolved derivation ${st.resolvedInputHash}`,
      where,
    };
  let floating = false;
  for (const o of ctx.rdrv.outputs.values()) if (o.path === '') floating = true;
  const wantKind = floating ? 'ca' : 'ia';
  let sameNames = st.outputs.size === ctx.rdrv.outputs.size;
  for (const n of ctx.rdrv.outputs.keys()) if (!st.outputs.has(n)) sameNames = false;
  if (st.kind !== wantKind || !sameNames) {
    const names = [...ctx.rdrv.outputs.keys()].sort();
    return fail(
      'output-mismatch',
      `statement (${st.kind}: ${[...st.outputs.keys()].join(', ')}) does not describe this ${wantKind} derivation (${names.join(', ')})`,
    );
  }
  for (const [on, o] of ctx.rdrv.outputs) {
    const so = st.outputs.get(on) as { path: string };
    let okPath = so.path === o.path;
    if (o.path === '') {
      try {
        const sp = parseStorePath(so.path, ctx.storeDir);
        okPath = sp.name === (on === 'out' ? ctx.name : `${ctx.name}-${on}`);
      } catch (err) {
        decidedOrThrow(err);
        okPath = false;
      }
    }
    if (!okPath) return fail('output-mismatch', `output ${on} claimed at ${so.path}, derivation says ${o.path || 'a content-addressed path'}`);
  }
  // Inputs: a statement that lists inputs must list every input path of the rdrv, each with a
  // hash its producer can have. laut's #ca lists none: acceptable only when every input's path
  // pins its content (floating-CA output, fixed-output output, source); an input-addressed
  // input would be unbound.
  const listsInputs = st.inputsListed;
  const inputs = new Map<string, string>();
  if (ctx.inputOrigins.size === 0)
    return { udrv: drv, rdrvHash: ctx.rdrvHash, rdrvPath: resolvedDrv, signer, where, outputs: st.outputs, inputs, deps: ctx.deps };
  const listed = new Map(st.inputs.map((i) => [i.path, i.sha256]));
  for (const [path, origin] of [...ctx.inputOrigins].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    if (!listsInputs) {
      if (origin.kind === 'output' && !origin.contentAddressed) {
        return fail(
          'input-missing',
          `a content-addressed (#ca) statement binds no input contents, and input ${path} (output of ${origin.drv}) is input-addressed: its content is unbound`,
        );
      }
      continue;
    }
    const got = listed.get(path);
    if (got === undefined) return fail('input-missing', `statement does not list input ${path}`);
    if (origin.kind === 'output' && !origin.hashes.has(got)) {
      return fail(
        'input-hash-mismatch',
        `input ${path}: statement says NAR sha256 ${got}, the traces of its producer ${origin.drv} say ${[...origin.hashes].sort().join(' or ')}`,
      );
    }
    if (origin.kind === 'fod' && origin.sha256 !== undefined && got !== origin.sha256) {
      return fail(
        'input-hash-mismatch',
        `input ${path}: statement says NAR sha256 ${got}, the fixed-output derivation ${origin.drv} declares ${origin.sha256}`,
      );
    }
    inputs.set(path, got);
  }
  return { udrv: drv, rdrvHash: ctx.rdrvHash, rdrvPath: resolvedDrv, signer, where, outputs: st.outputs, inputs, deps: ctx.deps };
}
