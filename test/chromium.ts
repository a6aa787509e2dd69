import { join } from 'node:path';
import { run, tempDir } from './helpers.js';

/** Debian's chromium, headless, isolated: a fresh profile, nothing fetched from the network. */
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** The DOM after the page's scripts ran (chromium --dump-dom), and how long the run took. */
export async function dumpDom(file: string): Promise<{ dom: string; ms: number }> {
  const t0 = Date.now();
  const r = await run('chromium', [...FLAGS, `--user-data-dir=${tempDir('chromium-')}`, '--dump-dom', `file://${file}`]);
  if (r.code !== 0) throw new Error(`chromium --dump-dom exited ${r.code}: ${r.stderr.slice(-2000)}`);
  return { dom: r.stdout, ms: Date.now() - t0 };
}

/** A PNG screenshot of the page (for a person to look at; the tests check the DOM). */
export async function screenshot(file: string, size = '1400,900'): Promise<string> {
  const png = join(tempDir('shot-'), 'page.png');
  const r = await run('chromium', [...FLAGS, `--user-data-dir=${tempDir('chromium-')}`, `--window-size=${size}`, `--screenshot=${png}`, `file://${file}`]);
  if (r.code !== 0) throw new Error(`chromium --screenshot exited ${r.code}: ${r.stderr.slice(-2000)}`);
  return png;
}

/** The rendered page's counters (<body data-*>) and the drv of every highlighted rebuild node. */
export function pageFacts(dom: string): { body: Record<string, string>; rebuild: string[]; nodes: number } {
  const bodyTag = /<body([^>]*)>/.exec(dom)?.[1] ?? '';
  const body: Record<string, string> = {};
  for (const m of bodyTag.matchAll(/data-([a-z-]+)="([^"]*)"/g)) body[m[1] as string] = m[2] as string;
  // the graph only (the page's own script holds the same markup as string literals)
  const svg = dom.slice(dom.indexOf('<svg'), dom.indexOf('</svg>'));
  const rebuild = [...svg.matchAll(/<g class="node rebuild[^"]*" data-drv="([^"]+)"/g)].map((m) => m[1] as string);
  const nodes = [...svg.matchAll(/<g class="node /g)].length;
  return { body, rebuild, nodes };
}
