import { BuildtraceError } from '../errors.js';
import type { CacheBackend } from './backend.js';
import { redactUrl } from './credentials.js';
import { FileCache } from './file-cache.js';
import { DEFAULT_READ_LIMITS, type ReadLimits } from './limits.js';

interface OpenCacheOptions {
  /** http(s): a file holding a bearer token sent to this cache only */
  readonly tokenFile?: string | undefined;
  /** http(s) and s3: request deadline and retries */
  readonly limits?: Pick<ReadLimits, 'requestTimeoutMs' | 'retries'>;
}

/** A cache backend from its URL: file:///dir (http(s):// and s3:// in their own modules). */
export async function openCache(url: string, opts: OpenCacheOptions = {}): Promise<CacheBackend> {
  const limits = opts.limits ?? DEFAULT_READ_LIMITS;
  if (url.startsWith('file://')) {
    const dir = decodeURIComponent(new URL(url).pathname);
    if (dir === '' || dir === '/') throw new BuildtraceError('USAGE', `${url}: a file:// cache needs a directory`);
    return new FileCache(dir);
  }
  if (url.startsWith('http://') || url.startsWith('https://')) {
    const { HttpCache } = await import('./http-cache.js');
    return HttpCache.fromUrl(url, { tokenFile: opts.tokenFile, limits });
  }
  if (url.startsWith('s3://')) {
    const { S3Cache } = await import('./s3-cache.js');
    return S3Cache.fromUrl(url, limits);
  }
  throw new BuildtraceError('USAGE', `unsupported cache URL ${JSON.stringify(redactUrl(url))} (file://, http(s)://, s3://)`);
}
