/**
 * Hook overhead: nix-build of N trivial derivations without a hook, with a no-op
 * shell hook, and with trace-hook, in the same run, rotating the order each round.
 * Prints milliseconds added per build (median over rounds) and the ratio.
 *   node dist/bench/hook-overhead.js [--n 200] [--rounds 5]
 */
import { mkdtempSync, writeFileSync, chmodSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURES, HOOK, nixEnv, run, salt } from '../test/helpers.js';

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
const spool = join(dir, 'spool');
(await import('node:fs')).mkdirSync(spool);

type Mode = 'none' | 'noop' | 'trace-hook';
const modes: Mode[] = ['none', 'noop', 'trace-hook'];

async function buildOnce(mode: Mode): Promise<number> {
  const extra: Record<string, string> = mode === 'none' ? {} : { 'post-build-hook': mode === 'noop' ? noop : HOOK };
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

const perBuild: Record<Mode, number[]> = { none: [], noop: [], 'trace-hook': [] };
const added: Record<'noop' | 'trace-hook', number[]> = { noop: [], 'trace-hook': [] };
for (let r = 0; r < ROUNDS; r++) {
  const order = [...modes.slice(r % 3), ...modes.slice(0, r % 3)];
  const got = {} as Record<Mode, number>;
  for (const m of order) got[m] = (await buildOnce(m)) / N;
  for (const m of modes) perBuild[m].push(got[m]);
  added.noop.push(got.noop - got.none);
  added['trace-hook'].push(got['trace-hook'] - got.none);
  process.stderr.write(`round ${r + 1}/${ROUNDS}: none ${got.none.toFixed(2)} ms/build, noop ${got.noop.toFixed(2)}, trace-hook ${got['trace-hook'].toFixed(2)}\n`);
}
const records = readdirSync(spool).length;
const result = {
  builds_per_run: N,
  rounds: ROUNDS,
  ms_per_build_median: { none: median(perBuild.none), noop_hook: median(perBuild.noop), trace_hook: median(perBuild['trace-hook']) },
  ms_added_per_build_median: { noop_hook: median(added.noop), trace_hook: median(added['trace-hook']) },
  ratio_trace_hook_vs_none: median(perBuild['trace-hook']) / median(perBuild.none),
  spool_records_written: records,
};
if (records !== N * ROUNDS) throw new Error(`expected ${N * ROUNDS} spool records, found ${records}`);
console.log(JSON.stringify(result, null, 2));
console.log(
  `trace-hook adds ${result.ms_added_per_build_median.trace_hook.toFixed(2)} ms per build (median of ${ROUNDS} rounds of ${N} builds; a no-op sh hook adds ${result.ms_added_per_build_median.noop_hook.toFixed(2)} ms); ratio with/without hook ${result.ratio_trace_hook_vs_none.toFixed(3)}`,
);
