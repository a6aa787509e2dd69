import { readFileSync } from 'node:fs';
import { BuildtraceError, EXIT_OK } from '../src/errors.js';
import { formatPublicKey, parsePublicKey, parseSecretKey, publicKeyFromPem, publicKeyToPem, sshFingerprint, type NixPublicKey } from '../src/nix/nix-key.js';
import { readTextInput } from '../src/util/read-input.js';
import { parseArgs } from '../src/util/args.js';

/** `-` is standard input, so `nix key convert-secret-to-public < k | trace-verify key to-pem -` works. */
function readKeyText(file: string, what: string): string {
  if (file !== '-') return readTextInput(file, what);
  try {
    // fd 0, not /dev/stdin: that cannot be opened when stdin is a socket
    return readFileSync(0, 'utf8');
  } catch (err) {
    throw new BuildtraceError('FILE_UNREADABLE', `cannot read ${what} from standard input: ${(err as Error).message}`, { subject: '-', cause: err });
  }
}

/**
 * A Nix public key file, or a Nix secret key file (the daemon's signingKeyFile): its public
 * half. The secret is parsed only to derive and check that half; nothing of it is printed.
 */
function nixPublicKeyFrom(file: string): NixPublicKey {
  const text = readKeyText(file, 'key file');
  const b64 = text.trim().slice(text.trim().indexOf(':') + 1);
  if (Buffer.from(b64, 'base64').length === 64) return parseSecretKey(text, file).publicKey;
  return parsePublicKey(text, file);
}

function describe(k: NixPublicKey): { name: string; publicKey: string; pem: string; spkiSha256: string; sshFingerprint: string } {
  return { name: k.name, publicKey: formatPublicKey(k), pem: publicKeyToPem(k), spkiSha256: k.fingerprint, sshFingerprint: sshFingerprint(k.raw) };
}

/**
 * `trace-verify key to-pem KEYFILE|-` and `trace-verify key from-pem PEMFILE|- --name NAME`:
 * Nix public keys to and from PEM SubjectPublicKeyInfo, the form cosign --key, openssl and
 * sigstore clients take.
 */
export function keyCommand(rest: readonly string[], help: string): number {
  const a = parseArgs(rest, { booleans: ['json'], strings: ['name'] });
  const [sub, file, extra] = a.positionals;
  if (a.flags.has('help')) {
    process.stdout.write(`${help}\n`);
    return EXIT_OK;
  }
  if (file === undefined || extra !== undefined)
    throw new BuildtraceError('USAGE', 'usage: trace-verify key to-pem KEYFILE|- | trace-verify key from-pem PEMFILE|- --name NAME');
  let k: NixPublicKey;
  if (sub === 'to-pem') {
    if (a.values.has('name')) throw new BuildtraceError('USAGE', 'key to-pem takes the name from the Nix key; --name is for from-pem');
    k = nixPublicKeyFrom(file);
  } else if (sub === 'from-pem') {
    const name = a.values.get('name');
    if (name === undefined) throw new BuildtraceError('USAGE', 'key from-pem needs --name NAME (the Nix key name, e.g. builder-1)');
    k = publicKeyFromPem(readKeyText(file, 'PEM file'), name, file);
  } else {
    throw new BuildtraceError('USAGE', `unknown key subcommand ${sub ?? '(none)'}: to-pem or from-pem`);
  }
  const d = describe(k);
  if (a.flags.has('json')) process.stdout.write(`${JSON.stringify(d, null, 2)}\n`);
  else process.stdout.write(sub === 'to-pem' ? d.pem : `${d.publicKey}\n`);
  return EXIT_OK;
}
