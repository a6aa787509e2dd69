import type { ReadLimits } from '../cache/limits.js';
import { BuildtraceError, errorMessage } from '../errors.js';
import type { DrvLoader } from '../store/drv-loader.js';
import { readBuilderImage } from '../tee/builder-image.js';
import { cpuTypeSignature } from '../tee/measure/cpu-types.js';
import { snpMeasurement } from '../tee/measure/snp-measurement.js';
import type { DerivedMeasurementSpec } from '../tee/tee-policy.js';
import type { DerivedProblemCode, Problem } from './claims.js';
import type { BundleSource } from './sources.js';
import type { FactSource } from './store-facts.js';
import type { AdmittedKey, MeasuredIdentity, TeeRequirement, TrustPolicy } from './trust-policy.js';
import { describeTrust, type TrustNode } from './trust-tree.js';
import { verifyWithLastMile } from './verdict.js';

/**
 * Measurements derived, not pasted (docs/rebuilding-builders.md). For every policy entry
 * whose TEE policy lists snp.derivedFrom: verify the builder image's closure under the
 * image policy with trace-verify's own verdict (verifyClosure, then the last mile), read the
 * verified output's bytes (the NAR hash of what we read must be the attested one), compute
 * the SEV-SNP launch digest for the stated launch parameters, and add it to the entry's
 * allowed measurements. Admission then runs unchanged: exactly the keys whose reports carry
 * a derived (or pasted) measurement are admitted.
 *
 * No identity vouches for its own image: an image policy that names its own identity, or an
 * identity whose measurement depends on it (a cycle through other derived identities), gives
 * no measurement. What remains is a DAG over the policy's finitely many entries, resolved
 * depth-first with memoisation, so recursion is bounded by the number of derived entries.
 */

export interface DerivedChain {
  readonly identity: string;
  readonly image: string;
  readonly output: string;
  readonly imagePolicy: string;
  readonly launch: { readonly vcpus: number; readonly vcpuType: string; readonly guestFeatures: string; readonly vmmType: string };
  readonly ok: boolean;
  /** 96 hex digits, when derived. */
  readonly measurement?: string;
  readonly imagePath?: string;
  readonly narSha256?: string;
  readonly signers?: readonly string[];
  readonly code?: DerivedProblemCode;
  readonly detail: string;
  /** Why the image did not verify (the first few of its problems). */
  readonly imageProblems?: readonly Problem[];
}

export interface DeriveContext {
  readonly sources: readonly BundleSource[];
  readonly facts: readonly FactSource[];
  readonly loader: DrvLoader;
  readonly limits?: ReadLimits;
  readonly at?: Date;
  /** The .drv of an image given as an output path (a hint: the verified outputs must include the path). */
  readonly deriverOf?: (path: string) => Promise<string>;
  /** Images to measure beyond the policy's own entries (trace-verify measure IMAGE), verified under their spec's image policy. */
  readonly also?: readonly { readonly identity: string; readonly spec: DerivedMeasurementSpec }[];
}

type Entry = (AdmittedKey & { readonly tee: TeeRequirement }) | MeasuredIdentity;

function leaves(n: TrustNode, out: string[] = []): string[] {
  if (typeof n === 'string') out.push(n);
  else for (const c of n.of) leaves(c, out);
  return out;
}

const specsOf = (e: Entry): readonly DerivedMeasurementSpec[] => e.tee.policy.snp?.derivedFrom ?? [];

export async function deriveMeasurements(policy: TrustPolicy, ctx: DeriveContext): Promise<{ policy: TrustPolicy; chains: DerivedChain[] }> {
  const entries = new Map<string, Entry>();
  for (const k of policy.keys.values()) if (k.tee && (k.tee.policy.snp?.derivedFrom?.length ?? 0) > 0) entries.set(k.name, { ...k, tee: k.tee });
  for (const m of policy.measured.values()) if ((m.tee.policy.snp?.derivedFrom?.length ?? 0) > 0) entries.set(m.name, m);
  if (entries.size === 0 && (ctx.also?.length ?? 0) === 0) return { policy, chains: [] };
  for (const [name, e] of entries)
    for (const [i, s] of specsOf(e).entries()) {
      const at = `${policy.file}: keys.${name}.tee.policy.snp.derivedFrom[${i}]`;
      try {
        cpuTypeSignature(s.vcpuType, 'vcpuType');
      } catch (err) {
        throw new BuildtraceError('POLICY_INVALID', `${at}.${errorMessage(err)}`, { subject: policy.file });
      }
      for (const n of leaves(s.imagePolicy))
        if (!policy.keys.has(n) && !policy.measured.has(n))
          throw new BuildtraceError('POLICY_INVALID', `${at}.imagePolicy names ${JSON.stringify(n)}, which is not in keys`, {
            subject: policy.file,
          });
    }

  // which derived entries each one's image policies depend on, transitively
  const reach = (from: string): Set<string> => {
    const seen = new Set<string>();
    const todo = [from];
    while (todo.length > 0) {
      const e = entries.get(todo.pop() as string);
      if (!e) continue;
      for (const s of specsOf(e))
        for (const n of leaves(s.imagePolicy))
          if (entries.has(n) && !seen.has(n)) {
            seen.add(n);
            todo.push(n);
          }
    }
    return seen;
  };
  const chains: DerivedChain[] = [];
  const resolved = new Map<string, Promise<Entry>>();

  const resolve = (name: string): Promise<Entry> => {
    let p = resolved.get(name);
    if (!p) {
      p = (async () => {
        const e = entries.get(name) as Entry;
        const derived: string[] = [];
        for (const spec of specsOf(e)) {
          const c = await derive(name, spec);
          chains.push(c);
          if (c.ok && c.measurement) derived.push(c.measurement);
        }
        const snp = e.tee.policy.snp ?? {};
        const measurements = [...new Set([...(snp.measurements ?? []), ...derived])];
        return { ...e, tee: { ...e.tee, policy: { ...e.tee.policy, snp: { ...snp, measurements } } } };
      })();
      resolved.set(name, p);
    }
    return p;
  };

  const derive = async (name: string, spec: DerivedMeasurementSpec): Promise<DerivedChain> => {
    const output = spec.output ?? 'out';
    const launch = { vcpus: spec.vcpus, vcpuType: spec.vcpuType, guestFeatures: spec.guestFeatures ?? '0x1', vmmType: spec.vmmType ?? 'QEMU' };
    const base = { identity: name, image: spec.image, output, imagePolicy: describeTrust(spec.imagePolicy), launch };
    const fail = (code: DerivedProblemCode, detail: string, extra: Partial<DerivedChain> = {}): DerivedChain => ({
      ...base,
      ...extra,
      ok: false,
      code,
      detail,
    });
    const named = leaves(spec.imagePolicy);
    if (named.includes(name))
      return fail('image-self-vouching', `the image policy names ${name} itself: an identity admitted by measurement never vouches for its own image`);
    const loop = named.find((n) => reach(n).has(name));
    if (loop !== undefined)
      return fail('image-self-vouching', `the image policy names ${loop}, whose measurement depends on ${name}'s own: a cycle, so no measurement`);
    // the image policy's signers: only the entries it names, derived ones resolved first (a DAG now)
    const keys = new Map<string, AdmittedKey>();
    const measured = new Map<string, MeasuredIdentity>();
    for (const n of named) {
      const r = entries.has(n) ? await resolve(n) : (policy.keys.get(n) ?? policy.measured.get(n));
      if (r && 'key' in r) keys.set(n, r);
      else if (r) measured.set(n, r);
    }
    const imagePolicy: TrustPolicy = {
      keys,
      measured,
      trust: spec.imagePolicy,
      maxResolutions: policy.maxResolutions,
      file: `${policy.file} (keys.${name} image policy)`,
    };
    let drv = spec.image;
    try {
      if (!drv.endsWith('.drv')) {
        if (!ctx.deriverOf) return fail('image-unreadable', `${spec.image} is not a .drv and no deriver lookup is available`);
        try {
          drv = await ctx.deriverOf(spec.image);
        } catch (err) {
          return fail('image-unreadable', `no derivation for ${spec.image}: ${errorMessage(err)}`);
        }
      }
      // the same verdict as trace-verify IMAGE: trust verdict over the closure, then the last mile
      const v = await verifyWithLastMile(drv, {
        policy: imagePolicy,
        sources: ctx.sources,
        facts: ctx.facts,
        loader: ctx.loader,
        limits: ctx.limits,
        requiredOutputs: [output],
        at: ctx.at,
        requireLastMile: false,
        notes: [],
      });
      if (!v.verified)
        return fail(
          'image-not-verified',
          `image ${drv} does not verify under ${base.imagePolicy}: ${v.problems
            .slice(0, 3)
            .map((p) => `${p.drv}: ${p.code}: ${p.detail}`)
            .join('; ')}`,
          {
            imageProblems: v.problems.slice(0, 20),
          },
        );
      const path = v.outputs[output];
      const attested = path === undefined ? undefined : v.world[path]?.narSha256;
      if (path === undefined || attested === undefined)
        return fail('image-not-verified', `image ${drv} verified, but its output ${output} has no attested content`);
      if (spec.image !== drv && path !== spec.image)
        return fail('image-not-verified', `${spec.image} is not output ${output} of the verified derivation ${drv} (that is ${path})`);
      const got = { imagePath: path, signers: v.signers };
      let image: Awaited<ReturnType<typeof readBuilderImage>>;
      try {
        image = await readBuilderImage(path);
      } catch (err) {
        return fail('image-unreadable', `${errorMessage(err)} (realise or copy the verified image into the local store)`, got);
      }
      if (image.narSha256 !== attested)
        return fail('image-content-mismatch', `the local copy of ${path} has NAR sha256 ${image.narSha256}, the verified claims attest ${attested}`, {
          ...got,
          narSha256: image.narSha256,
        });
      const m = snpMeasurement({
        firmware: image.firmware,
        ...(image.boot ? { boot: image.boot } : {}),
        vcpus: spec.vcpus,
        vcpuSignature: cpuTypeSignature(spec.vcpuType, `keys.${name} vcpuType`),
        guestFeatures: BigInt(launch.guestFeatures),
        vmm: launch.vmmType,
        subject: `${path}/firmware.fd`,
      }).toString('hex');
      return {
        ...base,
        ...got,
        ok: true,
        narSha256: attested,
        measurement: m,
        detail: `image ${path} verified under ${base.imagePolicy} (signers ${v.signers.join(', ')}); launch ${launch.vcpus} × ${launch.vcpuType}, features ${launch.guestFeatures}, ${launch.vmmType}`,
      };
    } catch (err) {
      if (
        err instanceof BuildtraceError &&
        (err.code === 'FIRMWARE_INVALID' || err.code === 'IMAGE_INVALID' || err.code === 'STORE_QUERY_FAILED' || err.code === 'FILE_UNREADABLE')
      )
        return fail('image-unreadable', errorMessage(err));
      throw err;
    }
  };

  const keys = new Map(policy.keys);
  const measured = new Map(policy.measured);
  for (const name of [...entries.keys()].sort()) {
    const r = await resolve(name);
    if ('key' in r) keys.set(name, r);
    else measured.set(name, r);
  }
  for (const x of ctx.also ?? []) chains.push(await derive(x.identity, x.spec));
  chains.sort((a, b) => (a.identity < b.identity ? -1 : a.identity > b.identity ? 1 : 0));
  return { policy: { ...policy, keys, measured }, chains };
}

/**
 * What the derivations add to a failed verdict: every chain that broke, and every derived
 * identity none of whose keys was admitted (no report carries what was derived).
 */
export function derivedProblems(chains: readonly DerivedChain[], keyStatus: Readonly<Record<string, { admitted: boolean; detail: string }>>): Problem[] {
  const out: Problem[] = [];
  const ok = new Map<string, DerivedChain[]>();
  for (const c of chains) {
    if (c.ok) ok.set(c.identity, [...(ok.get(c.identity) ?? []), c]);
    else out.push({ drv: c.image, code: c.code ?? 'image-not-verified', detail: `keys.${c.identity}: derived measurement: ${c.detail}` });
  }
  for (const [id, cs] of ok) {
    const st = keyStatus[id];
    // a measured identity reports how many keys it admitted; a key entry whether it was
    const admittedAny = st !== undefined && (/admits every key/.test(st.detail) ? /[1-9]\d* key\(s\) admitted/.test(st.detail) : st.admitted);
    if (admittedAny) continue;
    out.push({
      drv: cs[0]?.image ?? id,
      code: 'measurement-not-attested',
      detail: `keys.${id}: no key attestation that passed carries the derived measurement ${cs
        .map((c) => `${c.measurement} (${c.imagePath}, ${c.launch.vcpus} × ${c.launch.vcpuType}, features ${c.launch.guestFeatures}, ${c.launch.vmmType})`)
        .join(' or ')}`,
    });
  }
  return out;
}
