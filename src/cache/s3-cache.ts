import { BuildtraceError } from '../errors.js';
import type { CacheBackend, CacheObject } from './backend.js';

export class S3Cache implements CacheBackend {
  constructor(readonly url: string) {}
  static fromUrl(url: string): S3Cache {
    return new S3Cache(url.replace(/\/+$/, ''));
  }
  get(): Promise<CacheObject | undefined> {
    throw new BuildtraceError('USAGE', 's3:// caches are not implemented yet');
  }
  putIf(): Promise<boolean> {
    throw new BuildtraceError('USAGE', 's3:// caches are not implemented yet');
  }
  put(): Promise<void> {
    throw new BuildtraceError('USAGE', 's3:// caches are not implemented yet');
  }
}
