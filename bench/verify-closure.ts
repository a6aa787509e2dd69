/**
 * trace-verify over a closure of ~10,000 derivations whose traces sit in a file://
 * cache, against `nix store verify --sigs-needed 1` over the same output paths (signed
 * with `nix store sign`) in the same run. Also timed, as a floor: reading every trace and
 * checking its bundle on all cores with nothing else (bench/signature-floor.ts).
 *   node dist/bench/verify-closure.js [--chunks 40] [--width 250]
 * The closure, its traces and signatures are made once and reused from .bench/.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync, copyFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ed25519Backend } from '../src/nix/ed25519.js';
import { ROOT, must, nixBuildWithHook, nixEnv, run, salt, startDaemon, tempDir } from '../test/helpers.js';

const argv = process.argv.slice(2);
const opt = (n: string, d: number): number => (argv.includes(`--${n}`) ? Number(argv[argv.indexOf(`--${n}`) + 1]) : d);
const CHUNKS = opt('chunks', 40);
const WIDTH = opt('width', 250);
const dir = join(ROOT, '.bench', `closure-${CHUNKS}x${WIDTH}`);
const file = join(ROOT, 'bench/fixtures/closure.nix');
const stampFile = join(dir, 'stamp.json');

interface Stamp {
  salt: string;
  top: string;
  outputs: string[];
  cache: string;
  publicKey: string;
  keyFile: string;
}

function stampOk(): Stamp | undefined {
  if (!existsSync(stampFile)) return undefined;
  const s = JSON.parse(readFileSync(stampFile, 'utf8')) as Stamp;
  return existsSync(s.top) && s.outputs.every((o, i) => i % 500 !== 0 || existsSync(o)) ? s : undefined;
}

let stamp = stampOk();
if (!stamp) {
  mkdirSync(dir, { recursive: true });
  const s = salt();
  const args = [file, '--argstr', 'salt', s, '--arg', 'chunks', String(CHUNKS), '--arg', 'width', String(WIDTH)];
  const cache = join(dir, 'cache');
  const d = await startDaemon({ dir: join(dir, 'daemon'), keyName: 'bench-builder', extraConfig: { caches: [{ url: `file://${cache}` }] } });
  const staging = tempDir('bench-staging-');
  for (let c = 0; c < CHUNKS; c++) {
    process.stderr.write(`\rbuilding group ${c + 1}/${CHUNKS}`);
    const r = await nixBuildWithHook(staging, [...args, '-A', `groups.${c}`]);
    if (r.code !== 0) throw new Error(r.stderr.slice(-2000));
    for (const f of readdirSync(staging)) copyFileSync(join(staging, f), join(d.spool, f));
    (await import('node:fs')).rmSync(staging, { recursive: true, force: true });
    mkdirSync(staging);
  }
  const r = await nixBuildWithHook(staging, [...args, '-A', 'top']);
  if (r.code !== 0) throw new Error(r.stderr);
  for (const f of readdirSync(staging)) copyFileSync(join(staging, f), join(d.spool, f));
  process.stderr.write('\ntracing and publishing…\n');
  const p = await d.cli(['push', '--wait']);
  if (p.code !== 0) throw new Error(p.stdout + p.stderr);
  await d.stop();
  const top = (await must('nix-instantiate', [...args, '-A', 'top'], { env: nixEnv() })).stdout.trim();
  const outputs = (
    await must('nix-store', ['--query', '--requisites', (await must('nix-store', ['--query', '--outputs', top], { env: nixEnv() })).stdout.trim()], {
      env: nixEnv(),
    })
  ).stdout
    .trim()
    .split('\n');
  // all built outputs of the closure: the top's output references only the groups, so take every output of every drv
  const drvs = (await must('nix-store', ['--query', '--requisites', top], { env: nixEnv() })).stdout
    .trim()
    .split('\n')
    .filter((p) => p.endsWith('.drv'));
  const allOuts = (await must('nix-store', ['--query', '--outputs', ...drvs], { env: nixEnv() })).stdout.trim().split('\n');
  await must('nix', ['store', 'sign', '--key-file', d.keys.secretFile, ...allOuts], { env: nixEnv() });
  stamp = { salt: s, top, outputs: [...new Set([...allOuts, ...outputs])], cache, publicKey: d.keys.publicKey, keyFile: d.keys.secretFile };
  writeFileSync(stampFile, JSON.stringify(stamp));
}

const policy = join(dir, 'policy.json');
writeFileSync(policy, JSON.stringify({ keys: { builder: { publicKey: stamp.publicKey } }, trust: 'builder' }));

async function time(cmd: string, args: string[], env?: NodeJS.ProcessEnv): Promise<{ s: number; code: number; out: string }> {
  const t0 = process.hrtime.bigint();
  const r = await run(cmd, args, env ? { env } : {});
  return { s: Number(process.hrtime.bigint() - t0) / 1e9, code: r.code, out: r.stdout + r.stderr };
}

const ours: number[] = [];
const nixs: number[] = [];
const floors: number[] = [];
let checked = 0;
for (let i = 0; i < 3; i++) {
  const v = await time(join(ROOT, 'dist/verify/cli.js'), [stamp.top, '--policy', policy, '--cache', `file://${stamp.cache}`, '--json']);
  if (v.code !== 0) throw new Error(`trace-verify failed: ${v.out.slice(0, 2000)}`);
  checked = (JSON.parse(v.out) as { derivationsChecked: number }).derivationsChecked;
  ours.push(v.s);
  const n = await time('nix', ['store', 'verify', '--sigs-needed', '1', '--option', 'trusted-public-keys', stamp.publicKey, ...stamp.outputs], nixEnv());
  if (n.code !== 0) throw new Error(`nix store verify failed: ${n.out.slice(0, 2000)}`);
  nixs.push(n.s);
  const f = await time(process.execPath, [join(ROOT, 'dist/bench/signature-floor.js'), stamp.cache, stamp.publicKey]);
  if (f.code !== 0) throw new Error(`signature floor failed: ${f.out.slice(0, 2000)}`);
  floors.push(f.s);
}
const best = (xs: number[]): number => Math.min(...xs);
const result = {
  derivations_checked: checked,
  output_paths: stamp.outputs.length,
  trace_verify_seconds: best(ours),
  nix_store_verify_seconds: best(nixs),
  derivations_per_second: checked / best(ours),
  ratio_trace_verify_vs_nix_store_verify: best(ours) / best(nixs),
  signature_floor_seconds: best(floors),
  ratio_signature_floor_vs_nix_store_verify: best(floors) / best(nixs),
  ed25519: ed25519Backend(),
};
console.log(JSON.stringify(result, null, 2));
console.log(
  `trace-verify: ${checked} derivations in ${best(ours).toFixed(2)} s (${result.derivations_per_second.toFixed(0)}/s); nix store verify --sigs-needed 1 on ${stamp.outputs.length} paths: ${best(nixs).toFixed(2)} s; ratio ${result.ratio_trace_verify_vs_nix_store_verify.toFixed(2)}; reading and checking the bundles alone on all cores: ${best(floors).toFixed(2)} s (ratio ${result.ratio_signature_floor_vs_nix_store_verify.toFixed(2)}) (best of 3 each)`,
);
