/**
 * De-duplication of bundle lines by what is signed, before any signature check: a replayed
 * bundle whose unsigned fields (hints, media type, verification material) were changed costs
 * one check per signed content, however many copies a cache serves. Parsing here is minimal
 * and lax on purpose: it only groups lines; the bundle checker still judges each line it sees.
 */

interface SignedContent {
  /** payloadType, payload and signature bytes; the raw line when it does not parse. */
  readonly key: string;
  /** Every hint (signature keyids, verificationMaterial.publicKey.hint) names one of the known keys. */
  readonly hintsKnown: boolean;
}

function obj(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

function signedContent(line: string, knownFingerprints: ReadonlySet<string>): SignedContent {
  let b: Record<string, unknown> | undefined;
  try {
    b = obj(JSON.parse(line));
  } catch {
    b = undefined;
  }
  const env = obj(b?.['dsseEnvelope']);
  const sigs = env?.['signatures'];
  if (!env || typeof env['payload'] !== 'string' || typeof env['payloadType'] !== 'string' || !Array.isArray(sigs))
    return { key: `raw\0${line}`, hintsKnown: false };
  const hints: unknown[] = [obj(obj(b?.['verificationMaterial'])?.['publicKey'])?.['hint']];
  const sigBytes: string[] = [];
  for (const s of sigs) {
    const so = obj(s);
    sigBytes.push(typeof so?.['sig'] === 'string' ? Buffer.from(so['sig'], 'base64').toString('base64') : '');
    hints.push(so?.['keyid']);
  }
  const hintsKnown = hints.every((h) => typeof h === 'string' && knownFingerprints.has(h)) && new Set(hints).size === 1;
  return { key: `${env['payloadType']}\0${env['payload']}\0${sigBytes.join(',')}`, hintsKnown };
}

/**
 * Lines grouped by signed content; per group the variants to try, hint-consistent ones first,
 * at most `maxVariants` from each source (`lines` maps a line to the source that served it):
 * copies from one cache never crowd out another cache's line.
 */
export function groupBySignedContent(lines: ReadonlyMap<string, string>, knownFingerprints: ReadonlySet<string>, maxVariants: number): string[][] {
  const groups = new Map<string, Map<string, { good: string[]; other: string[] }>>();
  for (const [line, source] of lines) {
    const c = signedContent(line, knownFingerprints);
    let g = groups.get(c.key);
    if (!g) {
      g = new Map();
      groups.set(c.key, g);
    }
    let per = g.get(source);
    if (!per) {
      per = { good: [], other: [] };
      g.set(source, per);
    }
    const into = c.hintsKnown ? per.good : per.other;
    if (into.length < maxVariants) into.push(line);
  }
  // hint-consistent variants of every source before the others
  return [...groups.values()].map((g) => {
    const per = [...g.values()];
    return [...per.flatMap((x) => x.good), ...per.flatMap((x) => x.other.slice(0, maxVariants - x.good.length))];
  });
}
