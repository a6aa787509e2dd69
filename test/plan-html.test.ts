import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { renderPlanHtml } from '../src/plan/html.js';
import type { Plan } from '../src/plan/plan.js';
import { dumpDom, pageFacts, screenshot } from './chromium.js';
import { tempDir } from './helpers.js';

/**
 * A plan in the shape of the bench closure (bench/fixtures/closure.nix: 40 groups of 250 leaves,
 * a top): 10,041 derivations. Every `every`th leaf is to be rebuilt; its group and the top are saved.
 */
function benchShapedPlan(every = 97): Plan {
  const derivations: Plan['derivations'][number][] = [];
  const rebuild: Plan['rebuild'][number][] = [];
  const groups: number[] = [];
  for (let c = 0; c < 40; c++) {
    const leaves: number[] = [];
    let hit = false;
    for (let i = 0; i < 250; i++) {
      const drv = `/nix/store/${String(c * 250 + i).padStart(32, 'a')}-leaf-${c}-${i}.drv`;
      const lost = (c * 250 + i) % every === 0;
      hit ||= lost;
      leaves.push(derivations.length);
      derivations.push({ drv, name: `leaf-${c}-${i}`, kind: 'ia', inputs: [], status: lost ? 'current-only' : 'both', action: lost ? 'rebuild' : 'verified' });
      if (lost)
        rebuild.push({
          drv,
          name: `leaf-${c}-${i}`,
          kindOfDrv: 'ia',
          level: 0,
          kind: 'signers',
          detail: 'signed by {A}',
          inputs: [],
          absent: [{ identity: 'B', why: 'not in the next policy' }],
        });
    }
    groups.push(derivations.length);
    derivations.push({
      drv: `/nix/store/${String(c).padStart(32, 'g')}-group-${c}.drv`,
      name: `group-${c}`,
      kind: 'ia',
      inputs: leaves,
      status: hit ? 'current-only' : 'both',
      action: hit ? 'saved' : 'verified',
    });
  }
  derivations.push({ drv: `/nix/store/${'t'.repeat(32)}-top.drv`, name: 'top', kind: 'ia', inputs: groups, status: 'current-only', action: 'saved' });
  const saved = derivations.filter((d) => d.action === 'saved').length;
  return {
    target: `/nix/store/${'t'.repeat(32)}-top.drv`,
    current: { policy: 'current.json', trust: '2 of {A, B, C}', verified: true, targetProblems: [] },
    next: { policy: 'next.json', trust: 'A and C', verified: false, targetProblems: [] },
    counts: {
      derivations: derivations.length,
      stillVerified: derivations.filter((d) => d.action === 'verified').length,
      lost: derivations.filter((d) => d.status === 'current-only').length,
      gained: 0,
      failingBoth: 0,
      contentMismatch: 0,
      toRebuild: rebuild.length,
      savedIfReproducible: saved,
    },
    notCounting: [],
    rebuild,
    derivations,
    commands: { drvs: rebuild.map((r) => r.drv), nixStore: [`nix-store --realise --check ${rebuild.map((r) => r.drv).join(' ')}`], nixBuild: [] },
  };
}

describe('plan --html in headless Chromium', () => {
  test('10,041 derivations (the bench closure’s shape): renders within 10 s, clustered, every rebuild highlighted', async () => {
    const plan = benchShapedPlan();
    assert.equal(plan.derivations.length, 10041);
    const file = join(tempDir('plan-html-'), 'plan.html');
    writeFileSync(file, renderPlanHtml(plan));
    const { dom, ms } = await dumpDom(file);
    const f = pageFacts(dom);
    assert.equal(f.body['ready'], 'yes');
    // whole chromium run, start-up included, on a shared 2-core machine
    assert.ok(ms < 10_000, `rendered in ${ms} ms`);
    assert.deepEqual(new Set(f.rebuild), new Set(plan.rebuild.map((r) => r.drv)));
    assert.equal(Number(f.body['rebuild-highlighted']), plan.rebuild.length);
    // what is not drawn one by one is in a cluster: nothing is lost from the picture
    assert.equal(f.nodes, Number(f.body['nodes-rendered']));
    assert.equal(f.nodes + Number(f.body['clustered-derivations']), 10041);
    assert.ok(Number(f.body['clusters-rendered']) > 0 && f.nodes < 1000, `${f.nodes} nodes drawn`);
    // no network: nothing the page could fetch
    assert.doesNotMatch(renderPlanHtml(plan), /(src|href)="(https?:)?\/\//);
    const png = await screenshot(file);
    process.stderr.write(`screenshot: ${png} (render ${ms} ms)\n`);
  });

  test('10,041 derivations, every leaf to be rebuilt: the rebuilds are clustered in orange, all counted, within 10 s', async () => {
    const plan = benchShapedPlan(1);
    assert.equal(plan.rebuild.length, 10000);
    const file = join(tempDir('plan-html-'), 'plan.html');
    writeFileSync(file, renderPlanHtml(plan));
    const { dom, ms } = await dumpDom(file);
    const f = pageFacts(dom);
    assert.equal(f.body['ready'], 'yes');
    assert.ok(ms < 10_000, `rendered in ${ms} ms`);
    assert.equal(Number(f.body['rebuild-highlighted']), 10000);
    assert.equal(f.nodes + Number(f.body['clustered-derivations']), 10041);
    assert.match(dom, /<g class="cluster rebuild" data-key="L0:rebuild:current-only" data-count="10000">/);
  });
});
