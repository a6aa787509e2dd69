import { BuildtraceError } from '../errors.js';
import type { CacheBackend } from './backend.js';
import { FileCache } from './file-cache.js';

/** A cache backend from its URL: file:///dir (http(s):// and s3:// in their own modules). */
export async function openCache(url: string): Promise<CacheBackend> {
  if (url.startsWith('file://')) {
    const dir = decodeURIComponent(new URL(url).pathname);
    if (dir === '' || dir === '/') throw new BuildtraceError('USAGE', `${url}: a file:// cache needs a directory`);
    return new FileCache(dir);
  }
  if (url.startsWith('http://') || url.startsWith('https://')) {
    const { HttpCache } = await import('./http-cache.js');
    return HttpCache.fromUrl(url);
  }
  if (url.startsWith('s3://')) {
    const { S3Cache } = await import('./s3-cache.js');
    return S3Cache.fromUrl(url);
  }
  throw new BuildtraceError('USAGE', `unsupported cache URL ${JSON.stringify(url)} (file://, http(s)://, s3://)`);
}
