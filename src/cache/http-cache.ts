import type { CacheBackend, CacheObject, GetOptions } from './backend.js';
import { httpAuthFor, redactUrl, type HttpCredentialOptions } from './credentials.js';
import { DEFAULT_READ_LIMITS, type ReadLimits } from './limits.js';
import { getObject, getStream, putOptions, send, statusError } from './http-request.js';
import type { Readable } from 'node:stream';

interface HttpCacheOptions extends HttpCredentialOptions {
  readonly limits?: Pick<ReadLimits, 'requestTimeoutMs' | 'retries'>;
}

/**
 * http(s):// cache that accepts PUT (WebDAV-style). Appends use If-None-Match: * /
 * If-Match: <etag>; a server that answers 412 or 409 makes the writer re-read and retry.
 * Credentials: see credentials.ts (scoped to this cache; never in `url`).
 */
export class HttpCache implements CacheBackend {
  readonly url: string;
  private readonly base: URL;
  private readonly auth: string | undefined;
  private readonly limits: Pick<ReadLimits, 'requestTimeoutMs' | 'retries'>;
  constructor(url: string, opts: HttpCacheOptions = {}) {
    this.base = new URL(url.endsWith('/') ? url : `${url}/`);
    this.url = redactUrl(url);
    this.auth = httpAuthFor(this.base, opts);
    this.limits = opts.limits ?? DEFAULT_READ_LIMITS;
  }

  static fromUrl(url: string, opts: HttpCacheOptions = {}): HttpCache {
    return new HttpCache(url.replace(/\/+$/, ''), opts);
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return { ...(this.auth ? { authorization: this.auth } : {}), ...extra };
  }

  private target(key: string): URL {
    return new URL(key.split('/').map(encodeURIComponent).join('/'), this.base);
  }

  async get(key: string, opts: GetOptions = {}): Promise<CacheObject | undefined> {
    return getObject(this.target(key), () => this.headers(), { cache: this.url, key, limits: this.limits }, opts);
  }

  openStream(key: string, opts: { readonly deadlineMs: number }): Promise<Readable | undefined> {
    return getStream(this.target(key), this.headers(), { deadlineMs: opts.deadlineMs, idleMs: this.limits.requestTimeoutMs });
  }

  async putIf(key: string, body: Buffer, ifMatch: string | undefined, contentType: string): Promise<boolean> {
    const u = this.target(key);
    const cond: Record<string, string> = ifMatch === undefined ? { 'if-none-match': '*' } : { 'if-match': ifMatch };
    const res = await send(u, 'PUT', this.headers({ 'content-type': contentType, ...cond }), body, putOptions(this.limits));
    if (res.status === 412 || res.status === 409) return false;
    if (res.status < 200 || res.status > 299) throw statusError('PUT', u, res);
    return true;
  }

  async put(key: string, body: Buffer, contentType: string): Promise<void> {
    const u = this.target(key);
    const res = await send(u, 'PUT', this.headers({ 'content-type': contentType }), body, putOptions(this.limits));
    if (res.status < 200 || res.status > 299) throw statusError('PUT', u, res);
  }
}
