import { parentPort, workerData } from 'node:worker_threads';
import { NixDbStoreInfo, type PathInfo } from '../../daemon/store-info.js';
import { BuildtraceError } from '../errors.js';

/** Reads Nix's database for trace-verify's last mile on its own thread (local-store.ts is the other side). */
export type LocalStoreReply =
  | { readonly id: number; readonly infos: [string, PathInfo][] }
  | { readonly id: number; readonly error: { readonly code: BuildtraceError['code']; readonly message: string } };

const failure = (err: unknown): { code: BuildtraceError['code']; message: string } =>
  err instanceof BuildtraceError ? { code: err.code, message: err.message } : { code: 'STORE_QUERY_FAILED', message: String(err) };

let store: NixDbStoreInfo | undefined;
let opened: { code: BuildtraceError['code']; message: string } | undefined;
try {
  store = new NixDbStoreInfo((workerData as { dbPath: string }).dbPath);
} catch (err) {
  opened = failure(err);
}
// id 0 answers "is it open?"
parentPort?.postMessage(opened ? { id: 0, error: opened } : { id: 0, infos: [] });

parentPort?.on('message', (m: { id: number; paths: string[] }) => {
  if (!store) return;
  store.pathInfos(m.paths).then(
    (infos) => parentPort?.postMessage({ id: m.id, infos: [...infos] } satisfies LocalStoreReply),
    (err: unknown) => parentPort?.postMessage({ id: m.id, error: failure(err) } satisfies LocalStoreReply),
  );
});
