import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { CacheError } from './backend.js';

export interface HttpResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

/** One HTTP request with a timeout; network failures become retryable CacheErrors. */
export function send(
  url: URL,
  method: string,
  headers: Record<string, string>,
  body: Buffer | undefined,
  timeoutMs = 30_000,
): Promise<HttpResponse> {
  const req = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const r = req(url, { method, headers: { ...headers, ...(body ? { 'content-length': String(body.length) } : {}) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', (err) => reject(new CacheError(`${method} ${url.href}: ${err.message}`, false)));
    });
    r.setTimeout(timeoutMs, () => r.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    r.on('error', (err) => reject(new CacheError(`${method} ${url.href}: ${err.message}`, false)));
    r.end(body);
  });
}

/** 408, 409, 412, 425, 429 and 5xx are worth retrying; other 4xx are permanent. */
export function statusError(method: string, url: URL, res: HttpResponse): CacheError {
  const s = res.status;
  const permanent = s >= 400 && s < 500 && ![408, 409, 412, 425, 429].includes(s);
  const text = res.body.toString('utf8').slice(0, 200).replace(/\s+/g, ' ').trim();
  return new CacheError(`${method} ${url.href}: HTTP ${s}${text ? ` (${text})` : ''}`, permanent, s);
}
