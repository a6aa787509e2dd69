import { BuildtraceError } from '../errors.js';
import type { CacheBackend, CacheObject } from './backend.js';

export class HttpCache implements CacheBackend {
  constructor(readonly url: string) {}
  static fromUrl(url: string): HttpCache {
    return new HttpCache(url.replace(/\/+$/, ''));
  }
  get(): Promise<CacheObject | undefined> {
    throw new BuildtraceError('USAGE', 'http(s):// caches are not implemented yet');
  }
  putIf(): Promise<boolean> {
    throw new BuildtraceError('USAGE', 'http(s):// caches are not implemented yet');
  }
  put(): Promise<void> {
    throw new BuildtraceError('USAGE', 'http(s):// caches are not implemented yet');
  }
}
