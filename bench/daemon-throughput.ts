/**
 * Daemon throughput: records per second from a pre-filled spool to committed,
 * signed rows, and the daemon's peak RSS. Baseline in the same run: one batched
 * `nix path-info --json` over the same output paths (the least any capture built
 * on the Nix CLI must do).
 *   node dist/bench/daemon-throughput.js [--records 5000]
 * The derivations are built once (in chunks of 250, see DEVELOPERS.md on Nix 2.8's
 * scheduler) and reused from .bench/ across runs while they are still in the store.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { FIXTURES, ROOT, must, nixBuildWithHook, nixEnv, salt, startDaemon, waitFor } from '../test/helpers.js';

const argv = process.argv.slice(2);
const i = argv.indexOf('--records');
const K = i >= 0 ? Number(argv[i + 1]) : 5000;
const CHUNK = 250;

const cache = join(ROOT, '.bench', `throughput-${K}`);
const template = join(cache, 'spool');

function templateOk(): boolean {
  if (!existsSync(join(cache, 'stamp.json'))) return false;
  const names = readdirSync(template).filter((n) => n.endsWith('.json'));
  if (names.length < K) return false;
  for (const n of [names[0], names[names.length - 1]]) {
    const rec = JSON.parse(readFileSync(join(template, n as string), 'utf8')) as { drv: string };
    if (!existsSync(rec.drv)) return false;
  }
  return true;
}

if (!templateOk()) {
  rmSync(cache, { recursive: true, force: true });
  mkdirSync(template, { recursive: true });
  const s = salt();
  process.stderr.write(`building ${K} derivations in chunks of ${CHUNK} (once; reused from ${cache})\n`);
  for (let c = 0; c * CHUNK < K; c++) {
    const n = Math.min(CHUNK, K - c * CHUNK);
    const r = await nixBuildWithHook(template, [
      join(FIXTURES, 'many.nix'),
      '--argstr',
      'salt',
      `${s}-${c}`,
      '--arg',
      'n',
      String(n),
      '--argstr',
      'prefix',
      `tp${c}`,
    ]);
    if (r.code !== 0) throw new Error(r.stderr.slice(-2000));
  }
  writeFileSync(join(cache, 'stamp.json'), JSON.stringify({ records: K, salt: s }));
}
const names = readdirSync(template).filter((n) => n.endsWith('.json'));

const d = await startDaemon({ batchSize: Number(process.env['BENCH_BATCH'] ?? 500) });
const staging = join(d.dir, 'staging');
mkdirSync(staging);
for (const n of names) copyFileSync(join(template, n), join(staging, n));
const db = new Database(d.dbFile, { readonly: true });
const count = (): number => (db.prepare('SELECT count(*) AS n FROM traces').get() as { n: number }).n;

const t0 = process.hrtime.bigint();
for (const n of names) renameSync(join(staging, n), join(d.spool, n));
await waitFor(() => count() >= names.length, 600_000, 'all traces');
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
const status = readFileSync(`/proc/${d.child.pid}/status`, 'utf8');
const hwmKb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? NaN);
const st = JSON.parse((await d.cli(['status', '--json'])).stdout) as { traced: number; rejected: number; memory: Record<string, number> };
process.stderr.write(
  `daemon memory after the run (MB): ${Object.entries(st.memory)
    .map(([k, v]) => `${k} ${(v / 1048576).toFixed(1)}`)
    .join(', ')}\n`,
);
const outs = (db.prepare('SELECT path FROM outputs').all() as { path: string }[]).map((r) => r.path);
db.close();
await d.stop();
// Baseline: nix path-info --json over every output path, in one call.
const tb0 = process.hrtime.bigint();
await must('nix', ['path-info', '--json', ...outs], { env: nixEnv() });
const baselineS = Number(process.hrtime.bigint() - tb0) / 1e9;
if (st.traced !== names.length || st.rejected !== 0) throw new Error(`expected ${names.length} traced, got ${JSON.stringify(st)}`);

const rate = names.length / seconds;
const result = {
  records: names.length,
  seconds,
  traces_per_second: rate,
  peak_rss_mb: hwmKb / 1024,
  baseline_nix_path_info_seconds: baselineS,
  ratio_daemon_time_vs_nix_path_info: seconds / baselineS,
  ratio_vs_target_1000_per_s: rate / 1000,
};
console.log(JSON.stringify(result, null, 2));
console.log(
  `trace-daemon: ${rate.toFixed(0)} traces/s (${names.length} records in ${seconds.toFixed(2)} s), peak RSS ${result.peak_rss_mb.toFixed(1)} MB; ` +
    `nix path-info --json alone on the same outputs took ${baselineS.toFixed(2)} s (daemon/baseline time ratio ${result.ratio_daemon_time_vs_nix_path_info.toFixed(2)})`,
);
