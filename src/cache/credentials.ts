import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { BuildtraceError } from '../errors.js';

/**
 * Who gets which credential. A credential goes only to the endpoint it names: user-info in
 * the cache's own URL, a per-cache token file, a netrc `machine` equal to the cache's host,
 * or `$BUILDTRACE_CACHE_TOKEN` for the one origin `$BUILDTRACE_CACHE_TOKEN_ORIGIN` names.
 * No credential is ever sent to every cache, and none appears in a message (`redactUrl`).
 */

/**
 * The URL without user-info (user name and password), for messages, status, logs and the
 * daemon's `nix copy --to` (Nix gets its credentials from netrc, never from us).
 */
export function redactUrl(url: string): string {
  // also inside query values (s3://bucket?endpoint=https://user:pw@host), plain or encoded
  return url.replace(/(\b[a-z][a-z0-9+.-]*:\/\/)[^/@\s?#]*@/gi, '$1').replace(/(%3A%2F%2F)[^/@\s?#&]*%40/gi, '$1');
}

/** Credentials for a host from a netrc file (machine/login/password), if any. */
function netrcAuth(host: string, file = process.env['NETRC'] ?? join(homedir(), '.netrc')): string | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  const t = text.split(/\s+/).filter(Boolean);
  for (let i = 0; i < t.length; i++) {
    if (t[i] === 'machine' && t[i + 1] === host) {
      let login = '';
      let password = '';
      for (let j = i + 2; j < t.length && t[j] !== 'machine' && t[j] !== 'default'; j += 2) {
        if (t[j] === 'login') login = t[j + 1] ?? '';
        if (t[j] === 'password') password = t[j + 1] ?? '';
      }
      return `Basic ${Buffer.from(`${login}:${password}`).toString('base64')}`;
    }
  }
  return undefined;
}

/** The origin a URL's requests go to, as `$BUILDTRACE_CACHE_TOKEN_ORIGIN` spells it (scheme://host[:port]). */
const originOf = (u: URL): string => `${u.protocol}//${u.host}`;

export interface HttpCredentialOptions {
  /** a file holding a bearer token for this cache only (daemon config `tokenFile`) */
  readonly tokenFile?: string | undefined;
}

/** The Authorization header for one http(s) cache, or undefined. `base` may carry user-info. */
export function httpAuthFor(base: URL, opts: HttpCredentialOptions = {}, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (base.username || base.password) {
    return `Basic ${Buffer.from(`${decodeURIComponent(base.username)}:${decodeURIComponent(base.password)}`).toString('base64')}`;
  }
  if (opts.tokenFile !== undefined) {
    let token: string;
    try {
      token = readFileSync(opts.tokenFile, 'utf8').trim();
    } catch (err) {
      throw new BuildtraceError(
        'FILE_UNREADABLE',
        `cannot read the token file ${opts.tokenFile} of ${redactUrl(base.href)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
        { subject: opts.tokenFile },
      );
    }
    if (token === '') throw new BuildtraceError('CONFIG_INVALID', `token file ${opts.tokenFile} is empty`, { subject: opts.tokenFile });
    return `Bearer ${token}`;
  }
  const token = env['BUILDTRACE_CACHE_TOKEN'];
  if (token) {
    const origin = env['BUILDTRACE_CACHE_TOKEN_ORIGIN'];
    if (!origin) {
      throw new BuildtraceError(
        'CONFIG_INVALID',
        'BUILDTRACE_CACHE_TOKEN is set but BUILDTRACE_CACHE_TOKEN_ORIGIN is not: name the one cache it belongs to (e.g. https://cache.example.org), or use a per-cache tokenFile',
      );
    }
    let want: string;
    try {
      want = originOf(new URL(origin));
    } catch {
      throw new BuildtraceError('CONFIG_INVALID', `BUILDTRACE_CACHE_TOKEN_ORIGIN ${JSON.stringify(origin)} is not a URL`);
    }
    if (want === originOf(base)) return `Bearer ${token}`;
  }
  return netrcAuth(base.hostname);
}
