import type { Plan } from './plan.js';

/**
 * trace-verify plan --html: one self-contained page (no network: data and code inline). The
 * closure as a layered graph (inputs left of their users), each derivation a box whose left half
 * is its verdict under the current policy and right half under the next; the rebuild set outlined
 * in orange, "saved if reproducible" dashed blue. Above CLUSTER_AT derivations, the ones that
 * verify under both policies are clustered per layer, and so is any other group (layer, action,
 * status) of more than GROUP_MAX (click a cluster to open it; a rebuild cluster is outlined
 * orange). A searchable list beside the graph. The rendered counts are on
 * <body data-*> for tests.
 */

/** The page's data: short keys, inputs as indices (10,000 derivations stay a few MB). */
function pageData(plan: Plan): unknown {
  const levelOf = new Map(plan.rebuild.map((r) => [r.drv, r.level]));
  return {
    target: plan.target,
    current: plan.current,
    next: plan.next,
    counts: plan.counts,
    commands: plan.commands.nixStore,
    d: plan.derivations.map((d) => [d.drv, d.name, d.kind, d.status, d.action, d.inputs, levelOf.get(d.drv) ?? -1]),
  };
}

const CSS = `
body{font:13px system-ui,sans-serif;margin:0;display:flex;flex-direction:column;height:100vh}
header{padding:6px 10px;border-bottom:1px solid #ccc}
header h1{font-size:15px;margin:0 0 4px}
main{flex:1;display:flex;min-height:0}
#graph{flex:3;overflow:auto;border-right:1px solid #ccc;position:relative}
#side{flex:2;display:flex;flex-direction:column;min-width:320px}
#side input{margin:6px;padding:4px}
#list{flex:1;overflow:auto}
table{border-collapse:collapse;width:100%}
td,th{padding:2px 6px;border-bottom:1px solid #eee;text-align:left;white-space:nowrap}
.legend span{display:inline-block;margin-right:12px}
.sw{display:inline-block;width:10px;height:10px;vertical-align:middle;margin-right:3px}
.node{cursor:pointer}.node.match rect.frame{stroke:#000;stroke-width:3}
.cluster{cursor:pointer}
pre{margin:4px 0;white-space:pre-wrap;word-break:break-all}
#cmd{max-height:4.5em;overflow:auto;background:#f6f6f6}
`;

// Runs in the page. Plain ES2020, no libraries.
const SCRIPT = `
const P = JSON.parse(document.getElementById('plan-data').textContent);
const N = P.d.length, CLUSTER_AT = 1500, OK = '#3a9d3a', BAD = '#d33', W = 150, H = 18, GAP = 6, COL = 190;
const level = new Array(N).fill(0);
for (let i = 0; i < N; i++) for (const j of P.d[i][5]) level[i] = Math.max(level[i], level[j] + 1);
const expanded = new Set();
let query = '';
const ok = (s, side) => side === 0 ? (s === 'both' || s === 'current-only') : (s === 'both' || s === 'next-only');
// Above CLUSTER_AT derivations: per layer, those verified under both are one cluster, and so is
// any other (action, status) group of more than GROUP_MAX (an orange cluster for rebuilds).
const GROUP_MAX = 200, LIST_MAX = 300, groupSize = new Map();
const groupOf = (i) => 'L' + level[i] + ':' + P.d[i][4] + ':' + P.d[i][3];
for (let i = 0; i < N; i++) groupSize.set(groupOf(i), (groupSize.get(groupOf(i)) || 0) + 1);
function clusterKey(i) {
  const d = P.d[i];
  if (N <= CLUSTER_AT) return null;
  const k = groupOf(i);
  if (!(d[4] === 'verified' && d[3] === 'both') && groupSize.get(k) <= GROUP_MAX) return null;
  return expanded.has(k) ? null : k;
}
function esc(s) { return String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]); }
function render() {
  const items = [], at = new Map(), cl = new Map();
  for (let i = 0; i < N; i++) {
    const k = clusterKey(i);
    if (k === null) { at.set(i, items.length); items.push({ i, level: level[i] }); continue; }
    let c = cl.get(k);
    if (!c) { c = { key: k, level: level[i], n: 0, idx: items.length, status: P.d[i][3], action: P.d[i][4] }; cl.set(k, c); items.push(c); }
    c.n++; at.set(i, c.idx);
  }
  const rows = [];
  for (const it of items) { rows[it.level] = (rows[it.level] || 0); it.row = rows[it.level]++; it.x = 10 + it.level * COL; it.y = 10 + it.row * (H + GAP); }
  const maxRow = Math.max(1, ...rows.filter((x) => x !== undefined));
  const width = 20 + (rows.length) * COL, height = 20 + maxRow * (H + GAP);
  const edges = new Set(), parts = [];
  for (let i = 0; i < N; i++) for (const j of P.d[i][5]) { const a = at.get(j), b = at.get(i); if (a !== b) edges.add(a + ',' + b); }
  parts.push('<g stroke="#bbb" stroke-width="1" fill="none">');
  for (const e of edges) { const [a, b] = e.split(',').map(Number); const s = items[a], t = items[b]; parts.push('<path d="M' + (s.x + W) + ' ' + (s.y + H / 2) + 'L' + t.x + ' ' + (t.y + H / 2) + '"/>'); }
  parts.push('</g>');
  let matches = 0, rebuildDrawn = 0, nodesDrawn = 0;
  for (const it of items) {
    if (it.key !== undefined) {
      if (it.action === 'rebuild') rebuildDrawn += it.n;
      const cframe = it.action === 'rebuild' ? 'stroke="#f80" stroke-width="3"' : it.action === 'saved' ? 'stroke="#36c" stroke-width="2" stroke-dasharray="4 2"' : 'stroke="none"';
      parts.push('<g class="cluster ' + it.action + '" data-key="' + it.key + '" data-count="' + it.n + '"><title>' + it.n + ' derivations: ' + it.status + ', ' + it.action + ' (click to open)</title>' +
        '<rect x="' + it.x + '" y="' + it.y + '" width="' + W / 2 + '" height="' + H + '" rx="9" fill="' + (ok(it.status, 0) ? OK : BAD) + '" opacity="0.6"/>' +
        '<rect x="' + (it.x + W / 2) + '" y="' + it.y + '" width="' + W / 2 + '" height="' + H + '" rx="9" fill="' + (ok(it.status, 1) ? OK : BAD) + '" opacity="0.6"/>' +
        '<rect x="' + it.x + '" y="' + it.y + '" width="' + W + '" height="' + H + '" rx="9" fill="none" ' + cframe + '/>' +
        '<text x="' + (it.x + 8) + '" y="' + (it.y + 13) + '" fill="#fff">' + it.n + ' × ' + it.action + ' +</text></g>');
      continue;
    }
    const d = P.d[it.i], m = query !== '' && d[1].toLowerCase().includes(query);
    if (m) matches++;
    nodesDrawn++;
    if (d[4] === 'rebuild') rebuildDrawn++;
    const frame = d[4] === 'rebuild' ? 'stroke="#f80" stroke-width="3"' : d[4] === 'saved' ? 'stroke="#36c" stroke-width="2" stroke-dasharray="4 2"' : d[4] === 'content-mismatch' ? 'stroke="#c0c" stroke-width="3" stroke-dasharray="2 2"' : 'stroke="#666" stroke-width="1"';
    parts.push('<g class="node ' + d[4] + (m ? ' match' : '') + '" data-drv="' + esc(d[0]) + '" data-i="' + it.i + '"><title>' + esc(d[1] + ' (' + d[2] + '): ' + d[3] + ', ' + d[4]) + '</title>' +
      '<rect x="' + it.x + '" y="' + it.y + '" width="' + W / 2 + '" height="' + H + '" fill="' + (ok(d[3], 0) ? OK : BAD) + '"/>' +
      '<rect x="' + (it.x + W / 2) + '" y="' + it.y + '" width="' + W / 2 + '" height="' + H + '" fill="' + (ok(d[3], 1) ? OK : BAD) + '"/>' +
      '<rect class="frame" x="' + it.x + '" y="' + it.y + '" width="' + W + '" height="' + H + '" fill="none" ' + frame + '/>' +
      '<text x="' + (it.x + 4) + '" y="' + (it.y + 13) + '" fill="#fff">' + esc(d[1].slice(0, 22)) + '</text></g>');
  }
  document.getElementById('graph').innerHTML = '<svg xmlns="http://www.w3.org/2000/svg" width="' + width + '" height="' + height + '">' + parts.join('') + '</svg>';
  document.body.dataset.nodesRendered = String(nodesDrawn);
  document.body.dataset.clustersRendered = String(cl.size);
  document.body.dataset.clusteredDerivations = String([...cl.values()].reduce((s, c) => s + c.n, 0));
  document.body.dataset.rebuildHighlighted = String(rebuildDrawn);
  document.body.dataset.matches = String(matches);
  renderList();
  document.body.dataset.ready = 'yes';
}
function renderList() {
  const rows = [], shown = [];
  for (let i = 0; i < N; i++) {
    const d = P.d[i];
    if (query !== '' && !d[1].toLowerCase().includes(query)) continue;
    if (query === '' && d[4] === 'verified') continue;
    shown.push(i);
  }
  // the rebuild set first, lowest first; then what is saved; then the rest
  const rank = { rebuild: 0, 'content-mismatch': 1, saved: 2, verified: 3 };
  shown.sort((a, b) => rank[P.d[a][4]] - rank[P.d[b][4]] || P.d[a][6] - P.d[b][6] || a - b);
  for (const i of shown.slice(0, LIST_MAX)) {
    const d = P.d[i];
    rows.push('<tr data-i="' + i + '"><td>' + (d[4] === 'rebuild' ? '<b>rebuild</b> [' + d[6] + ']' : d[4]) + '</td><td>' + esc(d[1]) + '</td><td>' + d[2] + '</td><td>' + d[3] + '</td></tr>');
  }
  const more = shown.length > LIST_MAX ? '<p>' + (shown.length - LIST_MAX) + ' more: refine the search</p>' : '';
  document.getElementById('list').innerHTML = '<table><tr><th>action</th><th>derivation</th><th>kind</th><th>status</th></tr>' + rows.join('') + '</table>' + more +
    (query === '' ? '<p>' + P.counts.stillVerified + ' derivations that verify under the next policy are listed when searched for.</p>' : '');
}
document.getElementById('graph').addEventListener('click', (e) => {
  const c = e.target.closest('.cluster');
  if (c) { expanded.add(c.dataset.key); render(); return; }
  const n = e.target.closest('.node');
  if (n) { const d = P.d[Number(n.dataset.i)]; document.getElementById('detail').textContent = d[0] + '\\n' + d[1] + ' (' + d[2] + '): ' + d[3] + ', ' + d[4]; }
});
document.getElementById('search').addEventListener('input', (e) => { query = e.target.value.trim().toLowerCase(); render(); });
const c = P.counts;
document.getElementById('summary').textContent = c.derivations + ' derivations: ' + c.stillVerified + ' still verified, ' + c.lost + ' lost, ' + c.gained + ' gained, ' + c.failingBoth + ' failing under both; ' + c.toRebuild + ' to rebuild, ' + c.savedIfReproducible + ' saved if the rebuilds reproduce' + (c.contentMismatch > 0 ? '; ' + c.contentMismatch + ' verified in trust whose content at a cache or the local store is not the attested one' : '');
document.getElementById('cmd').textContent = P.commands.join('\\n') || 'nothing to rebuild';
render();
`;

export function renderPlanHtml(plan: Plan): string {
  // </script> inside the data must not end the element
  const data = JSON.stringify(pageData(plan)).replace(/</g, '\\u003c');
  const esc = (s: string): string => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] as string);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>trace-verify plan: ${esc(plan.target)}</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'">
<style>${CSS}</style></head>
<body>
<header><h1>Changing who you trust: ${esc(plan.target)}</h1>
<div>current <b>${esc(plan.current.policy)}</b> (${esc(plan.current.trust)}): ${plan.current.verified ? 'verified' : 'NOT verified'};
next <b>${esc(plan.next.policy)}</b> (${esc(plan.next.trust)}): ${plan.next.verified ? 'verified' : 'NOT verified'}</div>
<div id="summary"></div>
<div class="legend"><span><i class="sw" style="background:#3a9d3a"></i>verified</span><span><i class="sw" style="background:#d33"></i>not verified</span>
<span>left half: current policy, right half: next</span><span style="color:#f80"><b>orange frame: rebuild</b></span><span style="color:#36c">dashed blue: saved if the rebuilds reproduce</span><span style="color:#c0c">dotted magenta: content does not match what was attested</span></div>
<pre id="cmd"></pre></header>
<main><div id="graph"></div><div id="side"><input id="search" type="search" placeholder="search derivations by name"><pre id="detail"></pre><div id="list"></div></div></main>
<script type="application/json" id="plan-data">${data}</script>
<script>${SCRIPT}</script>
</body></html>
`;
}
