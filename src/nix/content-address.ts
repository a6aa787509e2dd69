import { BuildtraceError } from '../errors.js';
import { formatHash, parseHash, type Hash } from './hash.js';
import { makeFixedOutputPath, makeTextPathFromHash, printStorePath, type StorePath } from './store-path.js';

/** A store object's content address, as narinfo `CA:` and the Nix database's `ca` column write it. */
interface ContentAddress {
  readonly method: 'text' | 'flat' | 'recursive' | 'git';
  readonly hash: Hash;
}

/** `text:sha256:<h>`, `fixed:sha256:<h>` (flat), `fixed:r:<algo>:<h>`, `fixed:git:<algo>:<h>` (src/libstore/content-address.cc). */
export function parseContentAddress(ca: string): ContentAddress {
  const bad = (why: string): never => {
    throw new BuildtraceError('HASH_INVALID', `content address ${JSON.stringify(ca.slice(0, 200))}: ${why}`);
  };
  if (ca.startsWith('text:')) {
    const hash = parseHash(ca.slice(5));
    if (hash.algo !== 'sha256') bad('text content addresses are SHA-256');
    return { method: 'text', hash };
  }
  if (!ca.startsWith('fixed:')) return bad('neither text: nor fixed:');
  const rest = ca.slice(6);
  if (rest.startsWith('r:')) return { method: 'recursive', hash: parseHash(rest.slice(2)) };
  if (rest.startsWith('git:')) return { method: 'git', hash: parseHash(rest.slice(4)) };
  return { method: 'flat', hash: parseHash(rest) };
}

/**
 * The store path a content address gives a store object of this name and these references
 * (full paths; the object's own path among them is its self-reference). Undefined for git
 * hashing (no path in Nix 2.8); an error where no store object can have these references.
 */
export function contentAddressedPath(ca: ContentAddress, self: StorePath, references: readonly string[]): string | undefined {
  const me = printStorePath(self);
  const others = references.filter((r) => r !== me);
  const hasSelf = others.length !== references.length;
  const hex = formatHash(ca.hash, 'base16', false);
  switch (ca.method) {
    case 'text':
      if (hasSelf) throw new BuildtraceError('STORE_PATH_INVALID', `${me}: a text content address cannot refer to itself`);
      return printStorePath(makeTextPathFromHash(self.name, hex, others, self.storeDir));
    case 'recursive':
    case 'flat':
      // throws for references on anything but recursive SHA-256
      return printStorePath(makeFixedOutputPath(ca.method, ca.hash.algo, hex, self.name, others, self.storeDir, hasSelf));
    case 'git':
      return undefined;
  }
}
