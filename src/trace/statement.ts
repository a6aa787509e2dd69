import { BuildtraceError } from '../errors.js';
import { isObject, type JsonValue } from '../util/strict-json.js';

export const STATEMENT_TYPE = 'https://in-toto.io/Statement/v1';
export const SLSA_PROVENANCE_V1 = 'https://slsa.dev/provenance/v1';
/** laut's profile for resolved floating-CA derivations; we follow it field for field. */
export const BUILD_TYPE_CA = 'https://github.com/mschwaig/laut/blob/main/docs/slsa-provenance-v1.md#ca';
/** Ours: input-addressed (incl. fixed-output and formerly deferred) derivations, with every input's NAR digest. */
export const BUILD_TYPE_IA = 'https://buildtrace.dev/build-types/nix-input-addressed/v1';
export const NAR_MEDIA_TYPE = 'application/x-nix-nar';

export interface NarDigest {
  readonly path: string;
  /** Lowercase hex SHA-256 of the NAR. */
  readonly sha256: string;
  readonly narSize: number;
}

export interface TraceOutput extends NarDigest {
  readonly name: string;
  /** The output as the derivation declares it, without path: { hashAlgo, hash } or {}. */
  readonly declared: { readonly hashAlgo?: string; readonly hash?: string };
}

export type TraceKind = 'ca' | 'ia' | 'fixed';

export interface StatementParams {
  readonly kind: TraceKind;
  /** 32-char Nix32 hash part of the resolved derivation's store path. */
  readonly resolvedInputHash: string;
  readonly drvName: string;
  readonly outputs: readonly TraceOutput[];
  /** Every input store path of the resolved derivation, with its NAR digest (IA and fixed only). */
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
    .map((o) => ({
      name: o.name,
      digest: { sha256: o.sha256 },
      mediaType: NAR_MEDIA_TYPE,
      annotations: {
        laut_storePath: o.path,
        laut_output: { ...o.declared },
        buildtrace_narSize: o.narSize,
      },
    }));
  const buildDefinition: { [k: string]: JsonValue } =
    p.kind === 'ca'
      ? { buildType: BUILD_TYPE_CA, externalParameters: { resolvedInputHash: p.resolvedInputHash } }
      : {
          buildType: BUILD_TYPE_IA,
          externalParameters: { resolvedInputHash: p.resolvedInputHash },
          internalParameters: { derivationKind: p.kind, drvName: p.drvName },
          resolvedDependencies: [...p.inputs]
            .sort((a, b) => (a.path < b.path ? -1 : 1))
            .map((i) => ({ uri: `nix-store:${i.path}`, digest: { sha256: i.sha256 }, mediaType: NAR_MEDIA_TYPE, annotations: { buildtrace_narSize: i.narSize } })),
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

/** What a verifier needs from a statement, checked for shape. */
export interface ParsedStatement {
  readonly kind: TraceKind;
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
  const subj = field(v, 'subject', 'statement');
  if (!Array.isArray(subj) || subj.length === 0) bad('subject must be a non-empty array');
  const outputs = new Map<string, { path: string; sha256: string; narSize: number | undefined }>();
  for (const [i, s] of subj.entries()) {
    const name = strField(s, 'name', `subject[${i}]`);
    const sha = strField(field(s, 'digest', `subject[${i}]`), 'sha256', `subject[${i}].digest`);
    if (!HEX64.test(sha)) bad(`subject[${i}].digest.sha256 is not lowercase hex SHA-256`);
    const ann = field(s, 'annotations', `subject[${i}]`);
    const path = strField(ann, 'laut_storePath', `subject[${i}].annotations`);
    const size = isObject(ann) ? ann['buildtrace_narSize'] : undefined;
    if (outputs.has(name)) bad(`subject name ${JSON.stringify(name)} appears twice`);
    outputs.set(name, { path, sha256: sha, narSize: typeof size === 'number' ? size : undefined });
  }
  const inputs: NarDigest[] = [];
  if (buildType === BUILD_TYPE_IA) {
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
  return { kind, resolvedInputHash, builderId: id, outputs, inputs };
}
