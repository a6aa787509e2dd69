/**
 * Publishing throughput: traces appended per second to a file:// cache and to nginx
 * (WebDAV PUT with conditional writes), from an outbox of N traces; baseline in the
 * same run: `nix copy --to file://` of the same N outputs (narinfo + NAR each).
 *   node dist/bench/publish.js [--records 2000]
 */
import { copyFileSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURES, must, nixBuildWithHook, nixEnv, ROOT, salt, startDaemon, tempDir } from '../test/helpers.js';
import { startNginx } from '../test/nginx.js';

const argv = process.argv.slice(2);
const N = argv.includes('--records') ? Number(argv[argv.indexOf('--records') + 1]) : 2000;

// records: reuse the throughput benchmark's spool when it is there, else build N derivations
let template = join(ROOT, '.bench', 'throughput-5000', 'spool');
let names: string[] = [];
try {
  names = readdirSync(template)
    .filter((n) => n.endsWith('.json'))
    .slice(0, N);
  const rec = JSON.parse(readFileSync(join(template, names[0] as string), 'utf8')) as { drv: string };
  (await import('node:fs')).statSync(rec.drv);
} catch {
  names = [];
}
if (names.length < N) {
  template = tempDir('bench-publish-spool-');
  for (let c = 0; c * 250 < N; c++) {
    const r = await nixBuildWithHook(template, [
      join(FIXTURES, 'many.nix'),
      '--argstr',
      'salt',
      `${salt()}-${c}`,
      '--arg',
      'n',
      String(Math.min(250, N - c * 250)),
      '--argstr',
      'prefix',
      `pb${c}`,
    ]);
    if (r.code !== 0) throw new Error(r.stderr);
  }
  names = readdirSync(template).filter((n) => n.endsWith('.json'));
}

const dir = tempDir('bench-publish-');
const d0 = await startDaemon({ dir });
for (const n of names) copyFileSync(join(template, n), join(d0.spool, n));
await d0.cli(['push', '--wait']);
await d0.stop();

const nginx = await startNginx();
const results: Record<string, number> = {};
for (const [label, url] of [
  ['file', `file://${join(dir, 'file-cache')}`],
  ['nginx', nginx.url],
] as const) {
  const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...cfg, caches: [{ url }] }));
  const d = await startDaemon({ dir, extraConfig: { caches: [{ url }] } });
  const t0 = process.hrtime.bigint();
  const p = await d.cli(['push', '--wait']);
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  if (p.code !== 0) throw new Error(p.stdout + p.stderr);
  results[label] = names.length / s;
  await d.stop();
}
await nginx.stop();

const Database = (await import('better-sqlite3')).default;
const db = new Database(join(dir, 'state', 'buildtrace.db'), { readonly: true });
const outs = (db.prepare('SELECT path FROM outputs').all() as { path: string }[]).map((r) => r.path);
db.close();
const tb = process.hrtime.bigint();
await must('nix', ['copy', '--to', `file://${join(dir, 'nix-copy-cache')}`, ...outs], { env: nixEnv() });
const nixCopyRate = outs.length / (Number(process.hrtime.bigint() - tb) / 1e9);
const result = {
  traces: names.length,
  file_traces_per_s: results['file'],
  nginx_traces_per_s: results['nginx'],
  nix_copy_file_paths_per_s: nixCopyRate,
  ratio_file_vs_nix_copy: (results['file'] ?? 0) / nixCopyRate,
};
console.log(JSON.stringify(result, null, 2));
console.log(
  `publishing: ${(results['file'] ?? 0).toFixed(0)} traces/s to file://, ${(results['nginx'] ?? 0).toFixed(0)} traces/s to nginx; nix copy --to file:// of the same outputs: ${nixCopyRate.toFixed(0)} paths/s`,
);
