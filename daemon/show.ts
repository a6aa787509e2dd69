import { BuildtraceError } from '../src/errors.js';
import type { Capturer } from './capture.js';
import type { TraceDb, TraceDetail } from './trace-db.js';

/** Reasons a `.drv` cannot be resolved that mean "no trace", not "something broke". */
const NOT_RESOLVABLE: ReadonlySet<string> = new Set(['RESOLUTION_FAILED', 'FILE_UNREADABLE', 'STORE_PATH_INVALID', 'DERIVATION_INVALID', 'ATERM_INVALID']);

/**
 * Traces for a `.drv` (as built or resolved) or an output path. A `.drv` the hook never named
 * (Nix >= 2.34 reports only the resolved one; a record lost before the alias was written) is
 * resolved here, from the store's realisations, and looked up by its resolution.
 */
export async function findTraces(db: TraceDb, capturer: Capturer, path: string): Promise<TraceDetail[]> {
  const found = db.find(path);
  if (found.length > 0 || !path.endsWith('.drv')) return found;
  let rdrvPath: string;
  try {
    ({ rdrvPath } = await capturer.resolvedPath(path));
  } catch (err) {
    if (err instanceof BuildtraceError && NOT_RESOLVABLE.has(err.code)) return [];
    throw err;
  }
  return rdrvPath === path ? [] : db.find(rdrvPath);
}
