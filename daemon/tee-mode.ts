import { execFile } from 'node:child_process';
import { randomBytes, createPrivateKey, createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { promisify } from 'node:util';
import { BuildtraceError } from '../src/errors.js';
import { parseSecretKey, type NixSecretKey } from '../src/nix/nix-key.js';

const execFileP = promisify(execFile);
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/**
 * TEE mode: the signing key is born here, in guest memory, at every start, and is never
 * written anywhere. Its key attestation then says more than "a guest with this measurement
 * once saw this key": no one outside the guest (operator, host, anyone reading the disk)
 * ever held it. Sealing it to the measurement (SEV-SNP MSG_KEY_REQ derived key) so that it
 * survives a reboot is not implemented: each boot has a new key, and consumers admit the
 * measurement, not the key (README, "TEE mode").
 */
export function generateGuestKey(name: string): NixSecretKey {
  const seed = randomBytes(32);
  const pub = createPublicKey(createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' }))
    .export({ format: 'der', type: 'spki' })
    .subarray(-32);
  const text = `${name}:${Buffer.concat([seed, pub]).toString('base64')}`;
  seed.fill(0);
  return parseSecretKey(text, 'generated TEE key');
}

export function defaultTeeKeyName(): string {
  return `${hostname().replace(/[^A-Za-z0-9._-]/g, '-')}-tee`;
}

/** Non-comment, non-blank lines of a machines file (nix.conf `builders` syntax). */
function machineLines(text: string): string[] {
  return text
    .split(/[\n;]/)
    .map((l) => l.replace(/#.*/, '').trim())
    .filter((l) => l !== '');
}

/**
 * Why this machine builds remotely, if it does: Nix runs the post-build hook for builds done on
 * remote builders too, so an attested guest would sign work it never did. Checks the effective
 * `builders` setting (`nix config show`, `nix show-config` on older Nix) and the machines file.
 */
export async function remoteBuildersProblem(machinesFile: string): Promise<string | undefined> {
  let builders: string | undefined;
  for (const args of [
    ['config', 'show', 'builders'],
    ['--extra-experimental-features', 'nix-command', 'show-config'],
  ]) {
    try {
      const { stdout } = await execFileP('nix', args, { maxBuffer: 4 << 20 });
      builders = args[0] === 'config' ? stdout.trim() : (/^builders = (.*)$/m.exec(stdout)?.[1]?.trim() ?? '');
      break;
    } catch {
      // older or newer Nix: try the other spelling
    }
  }
  if (builders === undefined) return 'cannot read the Nix configuration (nix config show / nix show-config failed), so remote builders cannot be ruled out';
  if (builders.startsWith('@')) {
    const file = builders.slice(1).trim();
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      text = '';
    }
    if (machineLines(text).length > 0) return `Nix's builders setting points at ${file}, which lists remote builders`;
  } else if (machineLines(builders).length > 0) return `Nix's builders setting is ${JSON.stringify(builders)}`;
  let machines = '';
  try {
    machines = readFileSync(machinesFile, 'utf8');
  } catch {
    machines = '';
  }
  if (machineLines(machines).length > 0) return `${machinesFile} lists remote builders`;
  return undefined;
}

export function refuseRemoteBuilders(why: string): never {
  throw new BuildtraceError(
    'CONFIG_INVALID',
    `TEE mode refuses to trace while Nix may build on remote builders: ${why}. Nix runs the post-build hook for remote builds too, and an attested statement cannot say where a build ran. Set builders = (empty) and empty /etc/nix/machines on this builder, or run without a TEE provider.`,
  );
}
