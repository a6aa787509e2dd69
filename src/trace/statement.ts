import { BuildtraceError, decidedOrThrow } from '../errors.js';
import { parseStorePath } from '../nix/store-path.js';
import { isObject, type JsonValue } from '../util/strict-json.js';

const STATEMENT_TYPE = 'https://in-toto.io/Statement/v1';
const SLSA_PROVENANCE_V1 = 'https://slsa.dev/provenance/v1';
/** laut's profile for resolved floating-CA derivations; we follow it field for field. */
export const BUILD_TYPE_CA = 'https://github.com/mschwaig/laut/blob/main/docs/slsa-provenance-v1.md#ca';
/** Ours: input-addressed (incl. fixed-output and formerly deferred) derivations, with every input's NAR digest. */
export const BUILD_TYPE_IA = 'https://buildtrace.dev/build-types/nix-input-addressed/v1';
export const NAR_MEDIA_TYPE = 'application/x-nix-nar';

interface NarDigest {
  readonly path: string;
  /** Lowercase hex SHA-256 of the NAR. */
  readonly sha256: string;
  readonly narSize: number;
}

interface TraceOutput extends NarDigest {
  readonly name: string;
  /** The output as the derivation declares it, without path: { hashAlgo, hash } or {}. */
  readonly declared: { readonly hashAlgo?: string; readonly hash?: string };
  /** Base64 snix castore Entry of the output tree (laut profile only). */
  readonly castoreEntry?: string;
}

export type TraceKind = 'ca' | 'ia' | 'fixed';

/**
 * Which build type a statement uses. laut's `#ca` only for floating-CA derivations whose
 * inputs are all content-addressed (their rdrv then pins every input's content); every
 * other derivation uses ours, which lists every input with its NAR digest.
 */
export function useLautProfile(kind: TraceKind, inputsAllContentAddressed: boolean): boolean {
  return kind === 'ca' && inputsAllContentAddressed;
}

/**
 * laut_output as laut writes it: the output entry of `nix derivation show` without `path`
 * and `hash` (Nix >= 2.23 form: `method` + `hashAlgo`), derived from the ATerm's hashAlgo.
 * A fixed output keeps its declared `hash` under our build type (laut has no FOD traces).
 */
function lautOutputMetadata(declared: TraceOutput['declared'], keepDeclaredHash: boolean): { [k: string]: JsonValue } {
  const algo = declared.hashAlgo;
  if (algo === undefined || algo === '') return {};
  const m = /^(r:|text:|git:)?(.+)$/.exec(algo);
  const method = m?.[1] === 'r:' ? 'nar' : m?.[1] === 'text:' ? 'text' : m?.[1] === 'git:' ? 'git' : 'flat';
  const out: { [k: string]: JsonValue } = { hashAlgo: m?.[2] ?? algo, method };
  if (keepDeclaredHash && declared.hash !== undefined && declared.hash !== '') out['hash'] = declared.hash;
  return out;
}

export interface StatementParams {
  readonly kind: TraceKind;
  /** Write laut's `#ca` profile (see useLautProfile); needs castoreEntry on every output. Default: ours. */
  readonly lautProfile?: boolean;
  /** 32-char Nix32 hash part of the resolved derivation's store path. */
  readonly resolvedInputHash: string;
  readonly drvName: string;
  readonly outputs: readonly TraceOutput[];
  /** Every input store path of the resolved derivation, with its NAR digest (all but the laut profile). */
  readonly inputs: readonly NarDigest[];
  readonly keyFingerprint: string;
  readonly versions: Readonly<Record<string, string>>;
  readonly invocationId: string;
  readonly finishedOn: string;
}

export function builderId(keyFingerprint: string): string {
  return `urn:laut:builder:sha256:${keyFingerprint}`;
}

/** Builds the in-toto Statement v1 / SLSA Provenance v1 object. Serialize it once, sign those bytes. */
export function buildStatement(p: StatementParams): JsonValue {
  const subject = [...p.outputs]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((o) => {
      if (p.lautProfile === true && o.castoreEntry === undefined)
        throw new BuildtraceError('INTERNAL', `output ${o.name}: laut's profile needs its castore entry`);
      const annotations: { [k: string]: JsonValue } = { laut_storePath: o.path };
      if (p.lautProfile === true) annotations['laut_castoreEntry'] = o.castoreEntry as string;
      annotations['laut_output'] = lautOutputMetadata(o.declared, p.lautProfile !== true);
      annotations['buildtrace_narSize'] = o.narSize;
      return { name: o.name, digest: { sha256: o.sha256 }, mediaType: NAR_MEDIA_TYPE, annotations };
    });
  const buildDefinition: { [k: string]: JsonValue } =
    p.lautProfile === true
      ? { buildType: BUILD_TYPE_CA, externalParameters: { resolvedInputHash: p.resolvedInputHash } }
      : {
          buildType: BUILD_TYPE_IA,
          externalParameters: { resolvedInputHash: p.resolvedInputHash },
          internalParameters: { derivationKind: p.kind, drvName: p.drvName },
          resolvedDependencies: [...p.inputs]
            .sort((a, b) => (a.path < b.path ? -1 : 1))
            .map((i) => ({
              uri: `nix-store:${i.path}`,
              digest: { sha256: i.sha256 },
              mediaType: NAR_MEDIA_TYPE,
              annotations: { buildtrace_narSize: i.narSize },
            })),
        };
  return {
    _type: STATEMENT_TYPE,
    subject,
    predicateType: SLSA_PROVENANCE_V1,
    predicate: {
      buildDefinition,
      runDetails: {
        builder: { id: builderId(p.keyFingerprint), version: { ...p.versions } },
        metadata: { invocationId: p.invocationId, finishedOn: p.finishedOn },
      },
    },
  };
}

/**
 * Where a claim came from: our build type (`buildtrace`), laut's SLSA profile `#ca`
 * (`laut-slsa`), or laut's JWS container (`laut-jws`).
 */
type ClaimFormat = 'buildtrace' | 'laut-slsa' | 'laut-jws';

/**
 * What a verifier needs from a statement, checked for shape: one signer's claim about one
 * resolved derivation. The same type for every supported form (see TraceClaim).
 */
export interface ParsedStatement {
  readonly format: ClaimFormat;
  readonly kind: TraceKind;
  /**
   * true: `inputs` lists every input path of the rdrv with its NAR digest (our build type).
   * false: laut forms; they bind inputs only through the rdrv (sound where every input is
   * content-addressed or fixed, which the verifier must check on its own graph).
   */
  readonly inputsListed: boolean;
  readonly resolvedInputHash: string;
  readonly builderId: string;
  readonly outputs: ReadonlyMap<string, { readonly path: string; readonly sha256: string; readonly narSize: number | undefined }>;
  readonly inputs: readonly NarDigest[];
}

function bad(what: string): never {
  throw new BuildtraceError('BUNDLE_INVALID', `statement: ${what}`, { subject: what });
}

function field(o: JsonValue | undefined, k: string, path: string): JsonValue {
  if (!isObject(o)) bad(`${path} is not an object`);
  const v = o[k];
  if (v === undefined) bad(`${path}.${k} is missing`);
  return v;
}

function strField(o: JsonValue | undefined, k: string, path: string): string {
  const v = field(o, k, path);
  if (typeof v !== 'string') bad(`${path}.${k} is not a string`);
  return v;
}

const HEX64 = /^[0-9a-f]{64}$/;

/** laut's profile fixes the store root to /nix/store. */
export function isStorePath(p: string): boolean {
  try {
    parseStorePath(p, '/nix/store');
    return true;
  } catch (err) {
    decidedOrThrow(err);
    return false;
  }
}

/** A checked claim from any supported form (our bundle, a laut-profile bundle, a laut JWS). */
export type TraceClaim = ParsedStatement;

export function parseStatement(v: JsonValue): ParsedStatement {
  if (strField(v, '_type', 'statement') !== STATEMENT_TYPE) bad('_type is not in-toto Statement v1');
  if (strField(v, 'predicateType', 'statement') !== SLSA_PROVENANCE_V1) bad('predicateType is not SLSA Provenance v1');
  const pred = field(v, 'predicate', 'statement');
  const bd = field(pred, 'buildDefinition', 'predicate');
  const buildType = strField(bd, 'buildType', 'buildDefinition');
  const ext = field(bd, 'externalParameters', 'buildDefinition');
  const resolvedInputHash = strField(ext, 'resolvedInputHash', 'externalParameters');
  if (!/^[0-9a-df-np-sv-z]{32}$/.test(resolvedInputHash)) bad('externalParameters.resolvedInputHash is not a 32-char Nix32 hash');
  let kind: TraceKind;
  if (buildType === BUILD_TYPE_CA) kind = 'ca';
  else if (buildType === BUILD_TYPE_IA) {
    const k = strField(field(bd, 'internalParameters', 'buildDefinition'), 'derivationKind', 'internalParameters');
    // 'ca': a content-addressed derivation with input-addressed inputs, whose input contents #ca cannot carry
    if (k !== 'ia' && k !== 'fixed' && k !== 'ca') bad(`internalParameters.derivationKind ${JSON.stringify(k)} is unknown`);
    kind = k;
  } else bad(`unknown buildType ${JSON.stringify(buildType)}`);
  const laut = buildType === BUILD_TYPE_CA;
  if (laut) checkLautProfileRules(v, ext, bd);
  const subj = field(v, 'subject', 'statement');
  if (!Array.isArray(subj) || subj.length === 0) bad('subject must be a non-empty array');
  const outputs = new Map<string, { path: string; sha256: string; narSize: number | undefined }>();
  for (const [i, s] of subj.entries()) {
    const name = strField(s, 'name', `subject[${i}]`);
    const sha = strField(field(s, 'digest', `subject[${i}]`), 'sha256', `subject[${i}].digest`);
    if (!HEX64.test(sha)) bad(`subject[${i}].digest.sha256 is not lowercase hex SHA-256`);
    const ann = field(s, 'annotations', `subject[${i}]`);
    const path = strField(ann, 'laut_storePath', `subject[${i}].annotations`);
    if (!isStorePath(path)) bad(`subject[${i}].annotations.laut_storePath is not a /nix/store path`);
    const size = isObject(ann) ? ann['buildtrace_narSize'] : undefined;
    if (outputs.has(name)) bad(`subject name ${JSON.stringify(name)} appears twice`);
    outputs.set(name, { path, sha256: sha, narSize: typeof size === 'number' ? size : undefined });
  }
  const inputs: NarDigest[] = [];
  if (!laut) {
    const deps = field(bd, 'resolvedDependencies', 'buildDefinition');
    if (!Array.isArray(deps)) bad('buildDefinition.resolvedDependencies is not an array');
    for (const [i, d] of deps.entries()) {
      const uri = strField(d, 'uri', `resolvedDependencies[${i}]`);
      if (!uri.startsWith('nix-store:')) bad(`resolvedDependencies[${i}].uri is not a nix-store: URI`);
      const sha = strField(field(d, 'digest', `resolvedDependencies[${i}]`), 'sha256', `resolvedDependencies[${i}].digest`);
      if (!HEX64.test(sha)) bad(`resolvedDependencies[${i}].digest.sha256 is not lowercase hex SHA-256`);
      const ann = isObject(d) ? d['annotations'] : undefined;
      const size = isObject(ann) ? ann['buildtrace_narSize'] : undefined;
      inputs.push({ path: uri.slice('nix-store:'.length), sha256: sha, narSize: typeof size === 'number' ? size : 0 });
    }
  }
  const id = strField(field(field(pred, 'runDetails', 'predicate'), 'builder', 'runDetails'), 'id', 'runDetails.builder');
  return { format: laut ? 'laut-slsa' : 'buildtrace', kind, inputsListed: !laut, resolvedInputHash, builderId: id, outputs, inputs };
}

/** The rules of laut's profile (laut-sign/src/attestation.rs validate_statement) beyond our shape checks. */
function checkLautProfileRules(v: JsonValue, ext: JsonValue, bd: JsonValue): void {
  if (!isObject(ext) || Object.keys(ext).length !== 1) bad('externalParameters of the laut profile holds exactly resolvedInputHash');
  const deps = isObject(bd) ? bd['resolvedDependencies'] : undefined;
  if (deps !== undefined && deps !== null && !(Array.isArray(deps) && deps.length === 0)) bad('the laut profile has no resolvedDependencies');
  const run = field(field(v, 'predicate', 'statement'), 'runDetails', 'predicate');
  const version = field(run, 'builder', 'runDetails');
  const ver = isObject(version) ? version['version'] : undefined;
  if (ver !== undefined && ver !== null && !(isObject(ver) && Object.values(ver).every((x) => typeof x === 'string')))
    bad('runDetails.builder.version values must be strings');
  const inv = strField(field(run, 'metadata', 'runDetails'), 'invocationId', 'runDetails.metadata');
  if (!/^[0-9a-f]{32}$/.test(inv)) bad('runDetails.metadata.invocationId is not 32 lowercase hex characters');
  const subj = field(v, 'subject', 'statement');
  if (!Array.isArray(subj)) bad('subject must be an array');
  for (const [i, s] of subj.entries()) {
    if (!isObject(s) || s['mediaType'] !== NAR_MEDIA_TYPE) bad(`subject[${i}].mediaType is not ${NAR_MEDIA_TYPE}`);
    const name = strField(s, 'name', `subject[${i}]`);
    if (name === '') bad(`subject[${i}].name is empty`);
    const ann = field(s, 'annotations', `subject[${i}]`);
    const ce = strField(ann, 'laut_castoreEntry', `subject[${i}].annotations`);
    if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(ce)) bad(`subject[${i}].annotations.laut_castoreEntry is not base64`);
  }
}
