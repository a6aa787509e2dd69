import { createHash, createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { BuildtraceError } from '../errors.js';
import type { CacheBackend, CacheObject, GetOptions } from './backend.js';
import { redactUrl } from './credentials.js';
import { getObject, getStream, putOptions, send, statusError } from './http-request.js';
import { DEFAULT_READ_LIMITS, type ReadLimits } from './limits.js';

export interface Credentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

/** The usual AWS chain, minus instance metadata: environment, then the shared credentials file. */
function credentials(profile: string): Credentials | undefined {
  const id = process.env['AWS_ACCESS_KEY_ID'];
  const secret = process.env['AWS_SECRET_ACCESS_KEY'];
  if (id && secret)
    return { accessKeyId: id, secretAccessKey: secret, ...(process.env['AWS_SESSION_TOKEN'] ? { sessionToken: process.env['AWS_SESSION_TOKEN'] } : {}) };
  const file = process.env['AWS_SHARED_CREDENTIALS_FILE'] ?? join(homedir(), '.aws', 'credentials');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  let section = '';
  const vals: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const sec = /^\[(.+)\]$/.exec(line);
    if (sec) section = (sec[1] as string).trim();
    else if (section === profile) {
      const kv = /^([A-Za-z_]+)\s*=\s*(.*)$/.exec(line);
      if (kv) vals[kv[1] as string] = (kv[2] as string).trim();
    }
  }
  const a = vals['aws_access_key_id'];
  const s = vals['aws_secret_access_key'];
  return a && s ? { accessKeyId: a, secretAccessKey: s, ...(vals['aws_session_token'] ? { sessionToken: vals['aws_session_token'] } : {}) } : undefined;
}

const sha256hex = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');
const hmac = (k: Buffer | string, s: string): Buffer => createHmac('sha256', k).update(s).digest();
const enc = (s: string): string => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/** AWS Signature Version 4 for S3 (header form). Exported for the published test vectors. */
export function signV4(r: {
  method: string;
  url: URL;
  host: string;
  body: Buffer;
  headers: Record<string, string>;
  region: string;
  creds: Credentials | undefined;
  date: Date;
}): Record<string, string> {
  const now = r.date
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  const day = now.slice(0, 8);
  const payload = sha256hex(r.body);
  const headers: Record<string, string> = { host: r.host, 'x-amz-content-sha256': payload, 'x-amz-date': now };
  for (const [k, v] of Object.entries(r.headers)) headers[k.toLowerCase()] = v;
  if (r.creds?.sessionToken) headers['x-amz-security-token'] = r.creds.sessionToken;
  if (!r.creds) return headers;
  const names = Object.keys(headers).sort();
  const canonHeaders = names.map((n) => `${n}:${String(headers[n] ?? '').trim()}\n`).join('');
  const signed = names.join(';');
  const query = [...r.url.searchParams.entries()]
    .map(([k, v]) => `${enc(k)}=${enc(v)}`)
    .sort()
    .join('&');
  const canonical = [r.method, r.url.pathname, query, canonHeaders, signed, payload].join('\n');
  const scope = `${day}/${r.region}/s3/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', now, scope, sha256hex(canonical)].join('\n');
  const kDate = hmac(`AWS4${r.creds.secretAccessKey}`, day);
  const kSigning = hmac(hmac(hmac(kDate, r.region), 's3'), 'aws4_request');
  const sig = createHmac('sha256', kSigning).update(toSign).digest('hex');
  return { ...headers, authorization: `AWS4-HMAC-SHA256 Credential=${r.creds.accessKeyId}/${scope}, SignedHeaders=${signed}, Signature=${sig}` };
}

/**
 * s3://bucket?endpoint=https://host:port&region=r&profile=p&addressing-style=path|virtual|auto
 * with AWS Signature V4. Appends use S3 conditional writes (If-None-Match: *, If-Match).
 */
export class S3Cache implements CacheBackend {
  readonly url: string;
  constructor(
    url: string,
    private readonly bucket: string,
    private readonly endpoint: URL,
    private readonly region: string,
    private readonly style: 'path' | 'virtual',
    private readonly creds: Credentials | undefined,
    private readonly limits: Pick<ReadLimits, 'requestTimeoutMs' | 'retries'> = DEFAULT_READ_LIMITS,
  ) {
    this.url = redactUrl(url);
  }

  static fromUrl(url: string, limits: Pick<ReadLimits, 'requestTimeoutMs' | 'retries'> = DEFAULT_READ_LIMITS): S3Cache {
    const u = new URL(url);
    const bucket = u.hostname;
    if (!bucket) throw new BuildtraceError('USAGE', `${url}: no bucket`);
    const region = u.searchParams.get('region') ?? 'us-east-1';
    const endpoint = new URL(u.searchParams.get('endpoint') ?? `https://s3.${region}.amazonaws.com`);
    const style = u.searchParams.get('addressing-style') ?? 'auto';
    if (!['auto', 'path', 'virtual'].includes(style)) throw new BuildtraceError('USAGE', `${url}: addressing-style must be auto, path or virtual`);
    // like Nix: virtual-hosted for AWS, path-style for custom endpoints and dotted bucket names
    const resolved = style === 'auto' ? (u.searchParams.has('endpoint') || bucket.includes('.') ? 'path' : 'virtual') : (style as 'path' | 'virtual');
    return new S3Cache(url, bucket, endpoint, region, resolved, credentials(u.searchParams.get('profile') ?? 'default'), limits);
  }

  private target(key: string): { url: URL; host: string } {
    const path = key.split('/').map(enc).join('/');
    if (this.style === 'path') {
      const url = new URL(`${this.endpoint.origin}/${enc(this.bucket)}/${path}`);
      return { url, host: this.endpoint.host };
    }
    const host = `${this.bucket}.${this.endpoint.host}`;
    // connect to the endpoint, name the bucket in Host (works without wildcard DNS)
    return { url: new URL(`${this.endpoint.origin}/${path}`), host };
  }

  private sign(method: string, url: URL, host: string, body: Buffer, extra: Record<string, string>): Record<string, string> {
    return signV4({ method, url, host, body, headers: extra, region: this.region, creds: this.creds, date: new Date() });
  }

  async get(key: string, opts: GetOptions = {}): Promise<CacheObject | undefined> {
    const { url, host } = this.target(key);
    // signed afresh per attempt (the date is part of the signature); a 403 (AccessDenied, also
    // S3's answer for a missing key without s3:ListBucket) is an error, not "absent"
    return getObject(url, () => this.sign('GET', url, host, Buffer.alloc(0), {}), { cache: this.url, key, limits: this.limits }, opts);
  }

  /** A NAR as a stream (the substituter's NARs, `--fetch-derivers`' .drv files): signed like `get`, bounded like an http(s) cache's. */
  openStream(key: string, opts: { readonly deadlineMs: number }): Promise<Readable | undefined> {
    const { url, host } = this.target(key);
    return getStream(url, this.sign('GET', url, host, Buffer.alloc(0), {}), { deadlineMs: opts.deadlineMs, idleMs: this.limits.requestTimeoutMs });
  }

  async putIf(key: string, body: Buffer, ifMatch: string | undefined, contentType: string): Promise<boolean> {
    const { url, host } = this.target(key);
    const cond: Record<string, string> = ifMatch === undefined ? { 'if-none-match': '*' } : { 'if-match': ifMatch };
    const res = await send(url, 'PUT', this.sign('PUT', url, host, body, { 'content-type': contentType, ...cond }), body, putOptions(this.limits));
    if (res.status === 412 || res.status === 409) return false;
    if (res.status < 200 || res.status > 299) throw statusError('PUT', url, res);
    return true;
  }

  async put(key: string, body: Buffer, contentType: string): Promise<void> {
    const { url, host } = this.target(key);
    const res = await send(url, 'PUT', this.sign('PUT', url, host, body, { 'content-type': contentType }), body, putOptions(this.limits));
    if (res.status < 200 || res.status > 299) throw statusError('PUT', url, res);
  }
}
