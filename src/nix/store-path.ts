import { BuildtraceError } from '../errors.js';
import { compressHash, sha256, sha256Hex } from './hash.js';
import { isNix32, nix32Encode } from './nix32.js';

const DEFAULT_STORE_DIR = '/nix/store';
const HASH_PART_LENGTH = 32;
const MAX_NAME_LENGTH = 211;
const NAME_RE = /^[A-Za-z0-9+\-._?=]+$/;

export interface StorePath {
  readonly storeDir: string;
  readonly hashPart: string;
  readonly name: string;
}

/** `<hash>-<name>` */
export function printStorePath(p: StorePath): string {
  return `${p.storeDir}/${p.hashPart}-${p.name}`;
}

function validateName(name: string, subject: string): void {
  if (name.length === 0 || name.length > MAX_NAME_LENGTH) {
    throw new BuildtraceError('STORE_PATH_INVALID', `${subject}: store path name must be 1 to ${MAX_NAME_LENGTH} characters`, { subject });
  }
  // Nix rejects a leading dot (so "." and ".." can never be names) and any other character.
  if (name.startsWith('.') || !NAME_RE.test(name)) {
    throw new BuildtraceError('STORE_PATH_INVALID', `${subject}: illegal store path name ${JSON.stringify(name)}`, { subject });
  }
}

/** Parses a base name `<32 nix32 chars>-<name>`. */
export function parseBaseName(base: string, storeDir = DEFAULT_STORE_DIR): StorePath {
  const subject = JSON.stringify(base);
  if (base.length < HASH_PART_LENGTH + 2 || base[HASH_PART_LENGTH] !== '-') {
    throw new BuildtraceError('STORE_PATH_INVALID', `${subject} is not a store path base name (<hash>-<name>)`, { subject: base });
  }
  const hashPart = base.slice(0, HASH_PART_LENGTH);
  if (!isNix32(hashPart)) {
    throw new BuildtraceError('STORE_PATH_INVALID', `${subject}: hash part is not Nix32`, { subject: base });
  }
  const name = base.slice(HASH_PART_LENGTH + 1);
  validateName(name, subject);
  return { storeDir, hashPart, name };
}

/**
 * Parses a full store path. Refuses anything under another directory, any
 * sub-path ("/nix/store/x-y/bin"), "..", and names Nix would refuse.
 */
export function parseStorePath(path: string, storeDir = DEFAULT_STORE_DIR): StorePath {
  if (typeof path !== 'string' || !path.startsWith(`${storeDir}/`)) {
    throw new BuildtraceError('STORE_PATH_INVALID', `${JSON.stringify(path)} is not in the store ${storeDir}`, { subject: String(path) });
  }
  const base = path.slice(storeDir.length + 1);
  if (base.includes('/')) {
    throw new BuildtraceError('STORE_PATH_INVALID', `${JSON.stringify(path)} is a path inside a store object, not a store path`, { subject: path });
  }
  return parseBaseName(base, storeDir);
}

/**
 * makeStorePath (src/libstore/store-api.cc): the fingerprint
 * `<type>:sha256:<inner hex>:<storeDir>:<name>`, SHA-256, XOR-folded to 20 bytes, Nix32.
 */
function makeStorePath(type: string, innerHashHex: string, name: string, storeDir = DEFAULT_STORE_DIR): StorePath {
  validateName(name, JSON.stringify(name));
  const fingerprint = `${type}:sha256:${innerHashHex}:${storeDir}:${name}`;
  const hashPart = nix32Encode(compressHash(sha256(fingerprint), 20));
  return { storeDir, hashPart, name };
}

function makeType(kind: string, references: readonly string[], hasSelfReference = false): string {
  let t = kind;
  for (const r of [...references].sort()) t += `:${r}`;
  if (hasSelfReference) t += ':self';
  return t;
}

/** Text-addressed path (.drv files, builtins.toFile): references are full store paths. */
export function makeTextPath(name: string, content: Uint8Array | string, references: readonly string[], storeDir = DEFAULT_STORE_DIR): StorePath {
  return makeTextPathFromHash(name, sha256Hex(content), references, storeDir);
}

/** The same, from the SHA-256 (hex) of the content, as a `text:sha256:` content address gives it. */
export function makeTextPathFromHash(name: string, sha256HexOfContent: string, references: readonly string[], storeDir = DEFAULT_STORE_DIR): StorePath {
  return makeStorePath(makeType('text', references), sha256HexOfContent, name, storeDir);
}

/** Output path of an input-addressed derivation, from its hash modulo. */
export function makeOutputPath(outputName: string, hashModuloHex: string, drvName: string, storeDir = DEFAULT_STORE_DIR): StorePath {
  return makeStorePath(`output:${outputName}`, hashModuloHex, outputPathName(drvName, outputName), storeDir);
}

/** Path of a fixed-output (content-addressed by declared hash) store object. */
export function makeFixedOutputPath(
  method: 'flat' | 'recursive',
  algo: string,
  hashHex: string,
  name: string,
  references: readonly string[] = [],
  storeDir = DEFAULT_STORE_DIR,
  hasSelfReference = false,
): StorePath {
  if (algo === 'sha256' && method === 'recursive') {
    return makeStorePath(makeType('source', references, hasSelfReference), hashHex, name, storeDir);
  }
  if (references.length > 0 || hasSelfReference) {
    throw new BuildtraceError('STORE_PATH_INVALID', 'only recursive sha256 content addresses may have references');
  }
  const inner = sha256Hex(`fixed:out:${method === 'recursive' ? 'r:' : ''}${algo}:${hashHex}:`);
  return makeStorePath('output:out', inner, name, storeDir);
}

export function outputPathName(drvName: string, outputName: string): string {
  return outputName === 'out' ? drvName : `${drvName}-${outputName}`;
}

/** The derivation's own output placeholder: "/" + nix32(sha256("nix-output:" + output)). */
export function hashPlaceholder(outputName: string): string {
  return `/${nix32Encode(sha256(`nix-output:${outputName}`))}`;
}

/** Placeholder for a floating-CA output of an input derivation (DownstreamPlaceholder::unknownCaOutput). */
export function downstreamPlaceholder(drvPath: StorePath, outputName: string): string {
  const drvName = drvPath.name.endsWith('.drv') ? drvPath.name.slice(0, -4) : drvPath.name;
  return `/${nix32Encode(sha256(`nix-upstream-output:${drvPath.hashPart}:${outputPathName(drvName, outputName)}`))}`;
}
