/** Human-readable renderings of the daemon API's JSON. */

import type { CacheStatus } from './publisher.js';
import type { ServiceStats } from './service.js';

export interface StatusBody extends ServiceStats {
  version: string;
  pid: number;
  key: { name: string; fingerprint: string; publicKey: string; sshFingerprint: string };
  database: { file: string; traces: number; lastTraceAt: string | null };
  spool: { dir: string; pending: number; queued: number; rejected: number };
  store: { mode: string; nixDb?: string };
  busy: boolean;
  caches: CacheStatus[];
  tee: { provider: string; perTrace: boolean; keyEvidence: { at: string; provider: string; simulated: boolean } | null };
  memory: { rss: number; heapUsed: number; heapTotal: number; external: number; arrayBuffers: number };
}

function ago(iso: string | null | undefined): string {
  if (!iso) return 'never';
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m ago`;
}

export function formatStatus(b: StatusBody): string {
  const lines = [
    `trace-daemon ${b.version} running (pid ${b.pid}), started ${ago(b.startedAt)}${b.busy ? ', working' : ', idle'}`,
    `  signing key  ${b.key.name} (SPKI sha256 ${b.key.fingerprint.slice(0, 16)}…)`,
    `  database     ${b.database.file}: ${b.database.traces} traces, last ${ago(b.database.lastTraceAt)}`,
    `  spool        ${b.spool.dir}: ${b.spool.pending} pending, ${b.spool.rejected} rejected${b.spool.rejected > 0 ? ` (reasons in ${b.spool.dir}/rejected/*.reason)` : ''}`,
    `  store info   ${b.store.mode}${b.store.nixDb ? ` (${b.store.nixDb})` : ''}`,
    `  since start  ${b.traced} traced, ${b.duplicates} duplicate records, ${b.rejected} rejected, ${b.skipped} skipped, ${b.transientErrors} retried batches${b.unexpectedErrors > 0 ? `, ${b.unexpectedErrors} unexpected errors (records left in the spool)` : ''}`,
  ];
  for (const c of b.caches) {
    lines.push(
      `  cache        ${c.url}: ${c.done} published, ${c.pending} pending, ${c.failed} failed${c.lastSuccessAt ? `, last success ${ago(c.lastSuccessAt)}` : ''}`,
    );
    if (c.lastError && (c.pending > 0 || c.failed > 0)) lines.push(`               last error ${ago(c.lastError.at)}: ${c.lastError.message}`);
    if (c.failed > 0) lines.push(`               failed rows wait for: trace-daemon retry --cache ${c.url}   (after fixing the cause)`);
    for (const o of c.failingObjects ?? []) lines.push(`               object ${o.key} failing (retried with backoff) ${ago(o.at)}: ${o.message}`);
    if (c.preconditions === 'ignored') lines.push('               accepts writes under a stale If-Match: one publisher at a time only (lines can be lost)');
  }
  if (b.tee.provider !== 'none') {
    const k = b.tee.keyEvidence;
    lines.push(
      `  tee          ${b.tee.provider}${b.tee.perTrace ? ', every trace attested' : ''}; key attested ${k ? ago(k.at) : 'never'}${k?.simulated ? ' (SIMULATED: proves nothing about hardware)' : ''}`,
    );
  }
  if (b.lastError) lines.push(`  last error   ${ago(b.lastError.at)}: ${b.lastError.message}`);
  return lines.join('\n');
}

interface Row {
  id: number;
  rdrv_path: string;
  drv_name: string;
  kind: string;
  key_name: string;
  created_at: string;
}

export function formatList(body: unknown): string {
  const rows = (body as { traces: Row[] }).traces;
  if (rows.length === 0) return 'no traces yet';
  return rows.map((r) => `${r.created_at}  ${r.kind.padEnd(5)}  ${r.rdrv_path}  (${r.key_name})`).join('\n');
}

export function formatShow(body: unknown): string {
  const traces = (
    body as {
      traces: (Row & {
        rdrv_hash: string;
        drvs: string[];
        outputs: { name: string; path: string; nar_hash: string; nar_size: number }[];
        inputs: { path: string; nar_hash: string }[];
      })[];
    }
  ).traces;
  return traces
    .map((t) =>
      [
        `trace ${t.id}: ${t.drv_name} (${t.kind}), signed by ${t.key_name} at ${t.created_at}`,
        `  resolved derivation  ${t.rdrv_path}`,
        `  resolvedInputHash    ${t.rdrv_hash}`,
        ...t.drvs.filter((d) => d !== t.rdrv_path).map((d) => `  built as             ${d}`),
        ...t.outputs.map((o) => `  output ${o.name.padEnd(13)} ${o.path}\n                       nar sha256 ${o.nar_hash}, ${o.nar_size} bytes`),
        `  inputs               ${t.inputs.length}`,
        ...t.inputs.map((i) => `    ${i.path}  ${i.nar_hash}`),
      ].join('\n'),
    )
    .join('\n\n');
}
