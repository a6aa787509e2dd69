/**
 * The substituter's own Nix signing key: made at first start in the state directory (mode
 * 0600, never leaves the machine); its public half is what the consumer puts in
 * `trusted-public-keys`. Narinfo and realisation signatures use Nix's fingerprints.
 */
import { generateKeyPairSync } from 'node:crypto';
import { closeSync, constants, existsSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { BuildtraceError } from '../errors.js';
import { signBuildTrace } from '../nix/build-trace.js';
import { formatHash, type Hash } from '../nix/hash.js';
import { formatPublicKey, parseSecretKey, signFingerprint, type NixSecretKey } from '../nix/nix-key.js';
import { readRegularFile } from '../util/read-input.js';

const SECRET_KEY_FILE = 'signing-key.sec';
const PUBLIC_KEY_FILE = 'signing-key.pub';

function refuseLooseKey(file: string, mode: number): void {
  if ((mode & 0o077) !== 0)
    throw new BuildtraceError('KEY_INVALID', `${file} is readable by group or others (mode ${(mode & 0o777).toString(8)}); chmod 600 it`, { subject: file });
}

/** The key in `stateDir`, made now (Ed25519, Nix's file format) when there is none. */
export function loadOrCreateKey(stateDir: string, name = `${hostname()}-buildtrace-substituter-1`): NixSecretKey {
  const file = join(stateDir, SECRET_KEY_FILE);
  if (!existsSync(file)) {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const seed = Buffer.from(privateKey.export({ format: 'jwk' }).d as string, 'base64url');
    const pub = Buffer.from(publicKey.export({ format: 'jwk' }).x as string, 'base64url');
    // O_EXCL: two substituters starting at once never overwrite each other's key
    const fd = openSync(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    try {
      writeSync(fd, `${name}:${Buffer.concat([seed, pub]).toString('base64')}`);
    } finally {
      closeSync(fd);
    }
  }
  const text = readRegularFile(file, 'signing key', {
    maxBytes: 4096,
    noFollow: true,
    invalidCode: 'KEY_INVALID',
    check: (st) => refuseLooseKey(file, st.mode),
  });
  const key = parseSecretKey(text.toString('utf8'), file);
  writeFileSync(join(stateDir, PUBLIC_KEY_FILE), `${formatPublicKey(key.publicKey)}\n`, { mode: 0o644 });
  // for nix.conf's `!include` (the NixOS module): Nix trusts this key, and only it
  writeFileSync(join(stateDir, 'nix.conf'), `trusted-public-keys = ${formatPublicKey(key.publicKey)}\n`, { mode: 0o644 });
  return key;
}

interface NarInfoFields {
  readonly storePath: string;
  readonly url: string;
  readonly narSha256Hex: string;
  readonly narSize: number;
  /** Full store paths, sorted. */
  readonly references: readonly string[];
  readonly deriver?: string | undefined;
  readonly ca?: string | undefined;
}

const sha256Of = (hex: string): Hash => ({ algo: 'sha256', bytes: Uint8Array.from(Buffer.from(hex, 'hex')) });
const baseName = (p: string): string => p.slice(p.lastIndexOf('/') + 1);

/** A narinfo for an uncompressed NAR, signed over Nix's fingerprint `1;path;narHash;narSize;refs`. */
export function signedNarInfo(key: NixSecretKey, f: NarInfoFields): string {
  const narHash = `sha256:${formatHash(sha256Of(f.narSha256Hex), 'nix32', false)}`;
  const fingerprint = `1;${f.storePath};${narHash};${f.narSize};${f.references.join(',')}`;
  return [
    `StorePath: ${f.storePath}`,
    `URL: ${f.url}`,
    'Compression: none',
    `NarHash: ${narHash}`,
    `NarSize: ${f.narSize}`,
    `References: ${f.references.map(baseName).join(' ')}`,
    ...(f.deriver ? [`Deriver: ${baseName(f.deriver)}`] : []),
    `Sig: ${signFingerprint(key, fingerprint)}`,
    ...(f.ca ? [`CA: ${f.ca}`] : []),
    '',
  ].join('\n');
}

/** A Nix < 2.35 realisation (`realisations/<id>.doi`), signed over its JSON without signatures, keys sorted. */
export function signedRealisation(key: NixSecretKey, id: string, outPath: string): string {
  const fingerprint = JSON.stringify({ dependentRealisations: {}, id, outPath: baseName(outPath) });
  return JSON.stringify({ dependentRealisations: {}, id, outPath: baseName(outPath), signatures: [signFingerprint(key, fingerprint)] });
}

/**
 * A Nix >= 2.35 build trace value (`build-trace-v2/<resolved drv>/<output>.doi`): `{outPath,
 * signatures: [{keyName, sig}]}`, signed over Nix's fingerprint (src/nix/build-trace.ts).
 */
export function signedBuildTrace(key: NixSecretKey, rdrvBaseName: string, output: string, outPath: string): string {
  return JSON.stringify({ outPath: baseName(outPath), signatures: [signBuildTrace(key, rdrvBaseName, output, baseName(outPath))] });
}
