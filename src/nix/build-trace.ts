import { signDetached, type NixSecretKey } from './nix-key.js';

/**
 * Nix >= 2.35 build trace entries (`build-trace-v2/<drv base name>/<output>.doi` in a
 * binary cache): the value is `{outPath, signatures: [{keyName, sig}]}`; a signature
 * covers the compact JSON of `{key, value}` without `value.signatures`, keys sorted.
 */
export function buildTraceFingerprint(drvBaseName: string, outputName: string, outPathBaseName: string): string {
  // written out by hand: key order is part of the signed bytes
  return `{"key":{"drvPath":${JSON.stringify(drvBaseName)},"outputName":${JSON.stringify(outputName)}},"value":{"outPath":${JSON.stringify(outPathBaseName)}}}`;
}

export interface BuildTraceSignature {
  readonly keyName: string;
  readonly sig: string;
}

export function signBuildTrace(key: NixSecretKey, drvBaseName: string, outputName: string, outPathBaseName: string): BuildTraceSignature {
  return { keyName: key.name, sig: Buffer.from(signDetached(key, buildTraceFingerprint(drvBaseName, outputName, outPathBaseName))).toString('base64') };
}

export function buildTraceDoiKey(drvBaseName: string, outputName: string): string {
  return `build-trace-v2/${drvBaseName}/${outputName}.doi`;
}
