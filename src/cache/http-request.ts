import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { CacheError, type CacheObject, type GetOptions } from './backend.js';
import { redactUrl } from './credentials.js';
import { DEFAULT_READ_LIMITS, limitExceeded } from './limits.js';

interface HttpResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

interface SendOptions {
  /** total time for the request, connect to last body byte */
  readonly deadlineMs?: number;
  /** the body is streamed and the request aborted once it passes this many bytes */
  readonly maxBytes?: number;
  readonly signal?: AbortSignal | undefined;
  /** the cache URL and object key for messages (already redacted) */
  readonly cache?: string;
  readonly key?: string;
}

/** Where a request went, for messages: never with user-info. */
const shown = (url: URL): string => redactUrl(url.href);

/**
 * One HTTP request under a total deadline (a server that trickles one byte every few seconds
 * is cut off like a silent one); network failures and timeouts become retryable CacheErrors,
 * a body past `maxBytes` a LIMIT_EXCEEDED error.
 */
export function send(url: URL, method: string, headers: Record<string, string>, body: Buffer | undefined, opts: SendOptions = {}): Promise<HttpResponse> {
  const deadlineMs = opts.deadlineMs ?? DEFAULT_READ_LIMITS.requestTimeoutMs;
  const maxBytes = opts.maxBytes ?? Number.POSITIVE_INFINITY;
  const req = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (err: Error | undefined, res?: HttpResponse): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      if (err) {
        r.destroy();
        reject(err);
      } else resolve(res as HttpResponse);
    };
    const onAbort = (): void => finish(new CacheError(`${method} ${shown(url)}: abandoned`, false));
    // user-info is not sent in the URL (it became an Authorization header, or is dropped)
    const target = new URL(url.href);
    target.username = '';
    target.password = '';
    const r = req(target, { method, headers: { ...headers, ...(body ? { 'content-length': String(body.length) } : {}) } }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const declared = Number(res.headers['content-length']);
      if (Number.isFinite(declared) && declared > maxBytes && res.statusCode === 200) {
        finish(limitExceeded('maxObjectBytes', maxBytes, opts.key ?? url.pathname, opts.cache ?? shown(url), `the server announces ${declared} bytes`));
        return;
      }
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > maxBytes) {
          finish(limitExceeded('maxObjectBytes', maxBytes, opts.key ?? url.pathname, opts.cache ?? shown(url), 'the body went past it and was cut off'));
          return;
        }
        chunks.push(c);
      });
      res.on('end', () => finish(undefined, { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', (err) => finish(new CacheError(`${method} ${shown(url)}: ${err.message}`, false)));
      res.on('aborted', () => finish(new CacheError(`${method} ${shown(url)}: the server closed the connection mid-body`, false)));
    });
    const timer = setTimeout(
      () => finish(new CacheError(`${method} ${shown(url)}: no complete answer within ${deadlineMs} ms (limit requestTimeoutMs, a total deadline)`, false)),
      deadlineMs,
    );
    if (opts.signal?.aborted) onAbort();
    opts.signal?.addEventListener('abort', onAbort);
    r.on('error', (err) => finish(new CacheError(`${method} ${shown(url)}: ${err.message}`, false)));
    r.end(body);
  });
}

/**
 * A GET retried after timeouts, network errors and 5xx, with exponential backoff and jitter;
 * a LIMIT_EXCEEDED or an abandoned request is final. The last failure (error or 5xx answer)
 * is what the caller sees.
 */
async function getWithRetries(url: URL, headers: () => Record<string, string>, opts: SendOptions & { readonly retries?: number }): Promise<HttpResponse> {
  const retries = opts.retries ?? DEFAULT_READ_LIMITS.retries;
  for (let attempt = 0; ; attempt++) {
    let res: HttpResponse | undefined;
    try {
      res = await send(url, 'GET', headers(), undefined, opts);
    } catch (err) {
      if (!(err instanceof CacheError) || opts.signal?.aborted || attempt >= retries) throw err;
    }
    if (res && (res.status < 500 || attempt >= retries)) return res;
    const cap = 250 * 2 ** attempt;
    await new Promise((r) => setTimeout(r, cap / 2 + (Math.random() * cap) / 2));
    if (opts.signal?.aborted) throw new CacheError(`GET ${shown(url)}: abandoned`, false);
  }
}

/**
 * GET of one cache object for both http(s) and s3 backends: retried, bounded, and only
 * "not found" (404/410) is absence; 403 and every other answer are errors, so a writer never
 * creates over an object it may not read.
 */
export async function getObject(
  url: URL,
  headers: () => Record<string, string>,
  at: { readonly cache: string; readonly key: string; readonly limits: { readonly requestTimeoutMs: number; readonly retries: number } },
  opts: GetOptions,
): Promise<CacheObject | undefined> {
  const res = await getWithRetries(url, headers, {
    deadlineMs: at.limits.requestTimeoutMs,
    retries: at.limits.retries,
    cache: at.cache,
    key: at.key,
    ...(opts.maxBytes !== undefined ? { maxBytes: opts.maxBytes } : {}),
    signal: opts.signal,
  });
  if (res.status === 404 || res.status === 410) return undefined;
  if (res.status !== 200) throw statusError('GET', url, res);
  const etag = res.headers.etag;
  return { body: res.body, etag: typeof etag === 'string' ? etag : '' };
}

/** A PUT: its answer is short (capped), its deadline allows for the upload. */
export function putOptions(limits: { readonly requestTimeoutMs: number }): SendOptions {
  return { deadlineMs: Math.max(limits.requestTimeoutMs, 60_000), maxBytes: 1 << 20 };
}

/** 408, 409, 412, 425, 429 and 5xx are worth retrying; other 4xx are permanent. */
export function statusError(method: string, url: URL, res: HttpResponse): CacheError {
  const s = res.status;
  const text = res.body.toString('utf8').slice(0, 200).replace(/\s+/g, ' ').trim();
  // S3's 403 for a wrong clock is no verdict on access: transient, and never read as "absent"
  const skewed = s === 403 && /RequestTimeTooSkewed/.test(text);
  const permanent = s >= 400 && s < 500 && ![408, 409, 412, 425, 429].includes(s) && !skewed;
  const hint =
    s === 403 && !skewed && method === 'GET' ? ' — access denied, which is not "absent" (on S3, grant s3:ListBucket so a missing key answers 404)' : '';
  return new CacheError(`${method} ${shown(url)}: HTTP ${s}${text ? ` (${text})` : ''}${hint}`, permanent, s, s === 403 && !skewed ? 'forbidden' : undefined);
}

/**
 * A GET whose body is handed on as a stream (a NAR of any size, never held in memory): only
 * "not found" (404/410) is absence, any other non-200 an error. Silence for `idleMs` and the
 * whole answer past `deadlineMs` destroy the stream with an error.
 */
export function getStream(
  url: URL,
  headers: Record<string, string>,
  opts: { readonly deadlineMs: number; readonly idleMs: number },
): Promise<IncomingMessage | undefined> {
  const req = url.protocol === 'https:' ? httpsRequest : httpRequest;
  const target = new URL(url.href);
  target.username = '';
  target.password = '';
  return new Promise((resolve, reject) => {
    let body: IncomingMessage | undefined;
    // once the body is handed on, a timeout ends it with the error that says why (not "aborted")
    const fail = (err: CacheError): void => {
      if (body) body.destroy(err);
      else {
        r.destroy(err);
        reject(err);
      }
    };
    const r = req(target, { method: 'GET', headers }, (res) => {
      const status = res.statusCode ?? 0;
      if (status !== 200) {
        res.resume();
        clearTimeout(timer);
        if (status === 404 || status === 410) resolve(undefined);
        else {
          const where =
            typeof res.headers.location === 'string' ? ` (a redirect to ${redactUrl(res.headers.location)}: caches are read without following redirects)` : '';
          reject(new CacheError(`GET ${shown(url)}: HTTP ${status}${where}`, status < 500 && status !== 429 && status !== 408, status));
        }
        return;
      }
      body = res;
      res.once('close', () => clearTimeout(timer));
      resolve(res);
    });
    const timer = setTimeout(() => fail(new CacheError(`GET ${shown(url)}: not done within ${opts.deadlineMs} ms`, false)), opts.deadlineMs);
    r.setTimeout(opts.idleMs, () => fail(new CacheError(`GET ${shown(url)}: silent for ${opts.idleMs} ms (limit requestTimeoutMs)`, false)));
    r.on('error', (err) => {
      clearTimeout(timer);
      reject(new CacheError(`GET ${shown(url)}: ${err.message}`, false));
    });
    r.end();
  });
}
