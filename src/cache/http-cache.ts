import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { CacheBackend, CacheObject } from './backend.js';
import { send, statusError } from './http-request.js';

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
      for (let j = i + 2; j < t.length && t[j] !== 'machine'; j += 2) {
        if (t[j] === 'login') login = t[j + 1] ?? '';
        if (t[j] === 'password') password = t[j + 1] ?? '';
      }
      return 'Basic ' + Buffer.from(`${login}:${password}`).toString('base64');
    }
  }
  return undefined;
}

/**
 * http(s):// cache that accepts PUT (WebDAV-style). Appends use If-None-Match: * /
 * If-Match: <etag>; a server that answers 412 or 409 makes the writer re-read and retry.
 * Credentials: $BUILDTRACE_CACHE_TOKEN (bearer) or a netrc entry for the host.
 */
export class HttpCache implements CacheBackend {
  private readonly base: URL;
  private readonly auth: string | undefined;
  constructor(readonly url: string) {
    this.base = new URL(url.endsWith('/') ? url : url + '/');
    const token = process.env['BUILDTRACE_CACHE_TOKEN'];
    this.auth = token ? `Bearer ${token}` : netrcAuth(this.base.hostname);
  }

  static fromUrl(url: string): HttpCache {
    return new HttpCache(url.replace(/\/+$/, ''));
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return { ...(this.auth ? { authorization: this.auth } : {}), ...extra };
  }

  private target(key: string): URL {
    return new URL(key.split('/').map(encodeURIComponent).join('/'), this.base);
  }

  async get(key: string): Promise<CacheObject | undefined> {
    const u = this.target(key);
    const res = await send(u, 'GET', this.headers(), undefined);
    // S3-style servers answer 403 for a missing key in an unlistable bucket (as Nix assumes too)
    if (res.status === 404 || res.status === 403 || res.status === 410) return undefined;
    if (res.status !== 200) throw statusError('GET', u, res);
    const etag = res.headers.etag;
    return { body: res.body, etag: typeof etag === 'string' ? etag : '' };
  }

  async putIf(key: string, body: Buffer, ifMatch: string | undefined, contentType: string): Promise<boolean> {
    const u = this.target(key);
    const cond: Record<string, string> = ifMatch === undefined ? { 'if-none-match': '*' } : { 'if-match': ifMatch };
    const res = await send(u, 'PUT', this.headers({ 'content-type': contentType, ...cond }), body);
    if (res.status === 412 || res.status === 409) return false;
    if (res.status < 200 || res.status > 299) throw statusError('PUT', u, res);
    return true;
  }

  async put(key: string, body: Buffer, contentType: string): Promise<void> {
    const u = this.target(key);
    const res = await send(u, 'PUT', this.headers({ 'content-type': contentType }), body);
    if (res.status < 200 || res.status > 299) throw statusError('PUT', u, res);
  }
}
