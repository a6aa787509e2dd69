/**
 * trace-verify plan over the bench closure (bench/verify-closure.ts makes it: ~10,041
 * derivations traced by one builder) and its --html page in headless Chromium. Two changes:
 * none (the same policy: everything verifies, the page clusters it) and the builder's key revoked
 * in favour of a key that signed nothing (everything is to be rebuilt: every node drawn one by
 * one, the worst case for the page). Baselines measured in the same run: plain trace-verify over
 * the same closure (for plan's time) and Chromium on an empty page (for the render time).
 *   node dist/bench/verify-closure.js   # once, makes .bench/closure-40x250
 *   node dist/bench/plan-html.js
 */
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dumpDom, pageFacts } from '../test/chromium.js';
import { ROOT, run, tempDir } from '../test/helpers.js';

const stampFile = join(ROOT, '.bench', 'closure-40x250', 'stamp.json');
if (!existsSync(stampFile)) throw new Error(`${stampFile} is missing: run node dist/bench/verify-closure.js first`);
const stamp = JSON.parse(readFileSync(stampFile, 'utf8')) as { top: string; cache: string; publicKey: string };
const dir = tempDir('bench-plan-');
const der = generateKeyPairSync('ed25519').publicKey.export({ format: 'der', type: 'spki' });
const other = `other:${der.subarray(der.length - 32).toString('base64')}`;
const same = join(dir, 'same.json');
const revoked = join(dir, 'revoked.json');
writeFileSync(same, JSON.stringify({ keys: { builder: { publicKey: stamp.publicKey } }, trust: 'builder' }));
writeFileSync(
  revoked,
  JSON.stringify({
    keys: { builder: { publicKey: stamp.publicKey, status: 'revoked' }, other: { publicKey: other } },
    trust: { threshold: 1, of: ['builder', 'other'] },
  }),
);
const cli = join(ROOT, 'dist/verify/cli.js');
const cache = `file://${stamp.cache}`;

async function timed(args: string[]): Promise<{ s: number; code: number; out: string }> {
  const t0 = process.hrtime.bigint();
  const r = await run(cli, args);
  return { s: Number(process.hrtime.bigint() - t0) / 1e9, code: r.code, out: r.stdout };
}

const verify = await timed([stamp.top, '--policy', same, '--cache', cache, '--no-local-store', '--json']);
if (verify.code !== 0) throw new Error('the bench closure does not verify');
const empty = join(dir, 'empty.html');
writeFileSync(empty, '<!doctype html><title>empty</title><body>empty</body>');
const chromiumFloor = (await dumpDom(empty)).ms / 1000;
const result: Record<string, unknown> = { trace_verify_seconds: verify.s, chromium_empty_page_seconds: chromiumFloor };
for (const [label, to] of [
  ['unchanged', same],
  ['revoked', revoked],
] as const) {
  const html = join(dir, `${label}.html`);
  const p = await timed(['plan', stamp.top, '--policy', same, '--to', to, '--cache', cache, '--html', html, '--json']);
  if (p.code !== 0 && p.code !== 1) throw new Error(`plan failed (${p.code})`);
  const plan = JSON.parse(p.out) as { counts: { derivations: number; toRebuild: number } };
  const { dom, ms } = await dumpDom(html);
  const f = pageFacts(dom);
  if (f.body['ready'] !== 'yes') throw new Error(`${label}: the page did not finish rendering`);
  // one by one or in orange clusters: every rebuild is highlighted
  const highlighted = Number(f.body['rebuild-highlighted']);
  if (highlighted !== plan.counts.toRebuild) throw new Error(`${label}: ${highlighted} highlighted, plan says ${plan.counts.toRebuild}`);
  if (f.nodes + Number(f.body['clustered-derivations']) !== plan.counts.derivations) throw new Error(`${label}: derivations missing from the picture`);
  result[label] = {
    derivations: plan.counts.derivations,
    to_rebuild: plan.counts.toRebuild,
    plan_seconds: p.s,
    ratio_plan_vs_trace_verify: p.s / verify.s,
    page_bytes: readFileSync(html).length,
    nodes_drawn: f.nodes,
    clustered: Number(f.body['clustered-derivations'] ?? 0),
    chromium_render_seconds: ms / 1000,
    ratio_render_vs_empty_page: ms / 1000 / chromiumFloor,
  };
}
console.log(JSON.stringify(result, null, 2));
