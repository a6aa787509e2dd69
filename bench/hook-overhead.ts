/**
 * Hook overhead: nix-build of N trivial derivations without a hook, with a no-op
 * shell hook, with trace-hook as built (dist/trace-hook), and with its template under
 * /bin/sh and /bin/mv (what runs where there is no busybox), in the same run, rotating
 * the order each round. Prints milliseconds added per build (median over rounds) and
 * the ratio.
 *   node dist/bench/hook-overhead.js [--n 200] [--rounds 5]
 */
import { mkdtempSync, mkdirSync, writeFileSync, chmodSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURES, HOOK, HOOK_TEMPLATE, nixEnv, run, salt } from '../test/helpers.js';

const argv = process.argv.slice(2);
const opt = (name: string, def: number): number => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : def;
};
const N = opt('n', 200);
const ROUNDS = opt('rounds', 5);

const dir = mkdtempSync(join(tmpdir(), 'bench-hook-'));
const noop = join(dir, 'noop-hook');
writeFileSync(noop, '#!/bin/sh\nexit 0\n');
chmodSync(noop, 0o755);
// the template as a /bin/sh script with /bin/mv: scripts/build-hook.sh without a busybox
const template = join(dir, 'template-hook');
writeFileSync(template, readFileSync(HOOK_TEMPLATE, 'utf8').replace(/^mv=@mv@$/m, 'mv=/bin/mv'));
chmodSync(template, 0o755);
const spool = join(dir, 'spool');
mkdirSync(spool);

type Mode = 'none' | 'noop' | 'trace-hook' | 'template';
const modes: Mode[] = ['none', 'noop', 'trace-hook', 'template'];
const hookFile: Record<Exclude<Mode, 'none'>, string> = { noop, 'trace-hook': HOOK, template };

async function buildOnce(mode: Mode): Promise<number> {
  const extra: Record<string, string> = mode === 'none' ? {} : { 'post-build-hook': hookFile[mode] };
  const args = ['--no-out-link', join(FIXTURES, 'many.nix'), '--argstr', 'salt', salt(), '--arg', 'n', String(N), '--argstr', 'prefix', 'bench-hook'];
  const t0 = process.hrtime.bigint();
  const r = await run('nix-build', args, { env: nixEnv(extra, { BUILDTRACE_SPOOL: spool }) });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.code !== 0) throw new Error(`nix-build failed: ${r.stderr.slice(-2000)}`);
  return ms;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

const perBuild: Record<Mode, number[]> = { none: [], noop: [], 'trace-hook': [], template: [] };
const added: Record<Exclude<Mode, 'none'>, number[]> = { noop: [], 'trace-hook': [], template: [] };
for (let r = 0; r < ROUNDS; r++) {
  const order = [...modes.slice(r % modes.length), ...modes.slice(0, r % modes.length)];
  const got = {} as Record<Mode, number>;
  for (const m of order) got[m] = (await buildOnce(m)) / N;
  for (const m of modes) perBuild[m].push(got[m]);
  for (const m of ['noop', 'trace-hook', 'template'] as const) added[m].push(got[m] - got.none);
  process.stderr.write(
    `round ${r + 1}/${ROUNDS}: none ${got.none.toFixed(2)} ms/build, noop ${got.noop.toFixed(2)}, trace-hook ${got['trace-hook'].toFixed(2)}, template ${got.template.toFixed(2)}\n`,
  );
}
const records = readdirSync(spool).length;
const result = {
  builds_per_run: N,
  rounds: ROUNDS,
  hook: HOOK,
  ms_per_build_median: {
    none: median(perBuild.none),
    noop_hook: median(perBuild.noop),
    trace_hook: median(perBuild['trace-hook']),
    template_sh_bin_mv: median(perBuild.template),
  },
  ms_added_per_build_median: { noop_hook: median(added.noop), trace_hook: median(added['trace-hook']), template_sh_bin_mv: median(added.template) },
  ratio_trace_hook_vs_none: median(perBuild['trace-hook']) / median(perBuild.none),
  spool_records_written: records,
};
if (records !== 2 * N * ROUNDS) throw new Error(`expected ${2 * N * ROUNDS} spool records, found ${records}`);
console.log(JSON.stringify(result, null, 2));
console.log(
  `trace-hook adds ${result.ms_added_per_build_median.trace_hook.toFixed(2)} ms per build (median of ${ROUNDS} rounds of ${N} builds; a no-op sh hook adds ${result.ms_added_per_build_median.noop_hook.toFixed(2)} ms, the template under /bin/sh with /bin/mv ${result.ms_added_per_build_median.template_sh_bin_mv.toFixed(2)} ms); ratio with/without hook ${result.ratio_trace_hook_vs_none.toFixed(3)}`,
);
