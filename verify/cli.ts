#!/usr/bin/env -S node --max-semi-space-size=16 --max-inlined-bytecode-size-cumulative=200
// V8 flags, measured on the 10,041-derivation bench: a larger young generation (fewer
// scavenges of short-lived parse garbage) and less inlining (TurboFan compile time was about
// 0.5 s of CPU on background threads; 1.33 s instead of 1.41 s median).
import { resolveTarget } from './target-arg.js';
import { basename } from 'node:path';
import { readInput, readTextInput } from '../src/util/read-input.js';
import { LIMIT_FLAGS } from '../src/cache/limits.js';
import { DrvLoader } from '../src/store/drv-loader.js';
import { verifyWithLastMile, type VerifyOutput } from '../src/verify/verdict.js';
import type { DerivedChain } from '../src/verify/derived-measurement.js';
import { derivedLines, deriveWithLocalStore, MEASURE_HELP, measureCommand, withDerived } from './measure.js';
import { DEFAULT_NIX_DB, openConsumerSources, storeTargetFacts } from './consumer-sources.js';
import { loadTrustPolicy } from '../src/verify/trust-policy.js';
import type Database from 'better-sqlite3';
import { createRequire } from 'node:module';
import { BuildtraceError, EXIT_OK, EXIT_REJECTED } from '../src/errors.js';
import { ed25519Report } from '../src/nix/ed25519.js';
import { parsePublicKey, type NixPublicKey } from '../src/nix/nix-key.js';
import { checkBundle } from '../src/trace/bundle.js';
import { splitTraceObject } from '../src/trace/laut-jws.js';
import { parseArgs } from '../src/util/args.js';
import { keyCommand } from './key.js';
import { runCli } from '../src/util/run-cli.js';
import { SERVE_HELP, serveCommand } from './serve.js';
import { verifyEvidence } from '../src/tee/evidence.js';
import { parsePreimage, reportDataFor } from '../src/tee/binding.js';
import { loadTdxCollateral } from '../src/tee/collateral-dir.js';
import { parseAt } from '../src/tee/evidence.js';
import { loadRoots, refuseEvidenceInRoots } from '../src/tee/roots.js';
import { DEFAULT_TEE_POLICY, loadTeePolicy, type EvidenceVerdict } from '../src/tee/tee-policy.js';
import { INSTALLED_HELP, installedCommand } from './installed.js';
import { PLAN_HELP, planCommand } from './plan.js';

const HELP = `trace-verify: check build traces under your own trust policy

Usage:
  trace-verify TARGET --policy FILE [--cache URL]... [--db FILE]... [--output NAME]... [--json]
      re-do dependency resolution over TARGET's whole closure: for every derivation, the
      resolved derivations that admitted signers' traces make plausible, input NAR hashes
      against the traces of their producers, and the policy's trust tree at every position.
      TARGET: an unresolved .drv, a .nix file (with --attr A), or an output path proven to be an
      output of its recorded deriver, or, when that is a resolved .drv (content-addressed
      outputs), of the unresolved one the --nix-db realisations name (README "Trust semantics":
      a resolved .drv, or a path whose deriver cannot be established, is refused with exit 2).
      --cache file:///dir | http(s)://host/path | s3://bucket?endpoint=..&region=..
      --db a trace-daemon database; --output restricts the target to some outputs;
      --at RFC3339: the time TEE endorsements and collateral must be valid at (default: the
      policy's fixed instant, else now; never a time taken from the evidence).
      When stderr is a terminal, one progress line: derivations read, then checked.
      Bounds on what a cache can make us read (a run that hits one stops with exit 2 and
      names it): --max-object-bytes N (64 MiB), --max-line-bytes N (1 MiB), --max-lines N
      (100000 per object), --request-timeout-ms N (15000, total per request), --retries N (2);
      per run: --max-key-hints N (256 keys the policy does not name, tried against measured
      identities), --max-evidence-checks N (256 TEE evidence lines that fail verification).
      The last mile: after the trust verdict, every path of the verified closure and of the
      target's runtime closure (narinfo References / the local store's references) that a
      --cache's narinfo or the local Nix database knows must have exactly the attested NAR
      hash, and a content-addressed path must be the one its hash gives; otherwise
      content-mismatch (exit 1). A runtime path no verified claim attests fails; one that no
      source knows is listed as unchecked and fails only with --require-last-mile.
      --nix-db FILE: the local Nix database (default /nix/var/nix/db/db.sqlite, read-only;
      skipped with a note when absent); --no-local-store: consult only the caches.

${SERVE_HELP}

  trace-verify bundles (--db FILE | --file FILE)... --key FILE... [--json]
      check the signature and shape of every bundle in daemon databases or cache objects
      (traces/<hash>: JSON Lines of Sigstore bundles, Ed25519 or Ed25519ph, or laut's JWS
      container) against the given Nix public key files. A file named by a 32-char
      hash (as in a cache) must hold only claims about that resolved derivation.

  trace-verify evidence --report FILE [--vcek FILE | --vlek FILE] --roots DIR
               [--policy FILE] [--at RFC3339] [--collateral DIR] [--crl FILE] [--json]
      check one SEV-SNP report or TDX quote (detected from its bytes) against pinned roots
      (every certificate under DIR, e.g. AMD's ARK/ASK or the Intel SGX Root CA; a directory
      holding evidence files or end-entity certificates is refused) and a TEE policy; prints
      the parsed fields and each step's verdict. Without --policy: signature, chain,
      endorsement binding and validity must hold, debug is forbidden, measurements and TCB
      are shown, not judged. A policy file must list measurements or set anyMeasurement.
      Without --at: now (an impossible date is a usage error).
      --collateral DIR (TDX): Intel PCS collateral, offline: tcb-info.json, qe-identity.json
      (as served), tcb-signing-chain.pem, pck-crl.der, root-crl.der; checks the QE identity,
      FMSPC, TCB status (tdx.acceptedTcbStatuses, default UpToDate) and both CRLs.
      --crl FILE (SEV-SNP): AMD's CRL for the product (DER, signed by the ARK).
      --preimage FILE: REPORT_DATA must equal SHA-512 of this recorded preimage (a key or
      trace attestation); with --key FILE the preimage must bind that Nix public key.

${MEASURE_HELP}

  trace-verify key to-pem KEYFILE|- [--json]
  trace-verify key from-pem PEMFILE|- --name NAME [--json]
      a Nix public key (name:base64, from nix key convert-secret-to-public; or a Nix secret
      key file such as the daemon's signingKeyFile: its public half) as PEM
      SubjectPublicKeyInfo, the form cosign --key and openssl take, and back. --json also
      gives the key hints: spkiSha256 and sshFingerprint (SHA256:…, what bundles carry).

${PLAN_HELP}

${INSTALLED_HELP}

Options:
  --db FILE     a trace-daemon database (read-only)
  --file FILE   a cache object: JSON Lines of bundles or a laut JWS container
  --key FILE    a Nix public key file (name:base64), as written by nix key convert-secret-to-public
  --json        machine-readable output (lastMile: checked, unchecked, mismatches, unattested, errors)
  --require-last-mile  fail (exit 1) when a runtime-closure path could not be checked
  -h, --help    this text

Exit codes: 0 verified, 1 not verified, 2 usage or input error, 70 internal error (a bug,
never a verdict: report it).`;

function readKeys(files: readonly string[]): NixPublicKey[] {
  return files.map((f) => parsePublicKey(readTextInput(f, 'key'), f));
}

interface BundleLine {
  readonly where: string;
  readonly line: string;
  /** The rdrv the unit must be about: its database row, or a file named traces/<hash>. */
  readonly expectedHash?: string;
}

function loadBundles(dbs: readonly string[], files: readonly string[]): BundleLine[] {
  const out: BundleLine[] = [];
  for (const f of dbs) {
    let db: Database.Database;
    try {
      const Sqlite = createRequire(import.meta.url)('better-sqlite3') as typeof Database;
      db = new Sqlite(f, { readonly: true, fileMustExist: true });
    } catch (err) {
      throw new BuildtraceError('FILE_UNREADABLE', `cannot open database ${f}: ${(err as Error).message}`, { subject: f });
    }
    for (const r of db.prepare('SELECT id, rdrv_path, rdrv_hash, bundle FROM traces ORDER BY id').all() as {
      id: number;
      rdrv_path: string;
      rdrv_hash: string;
      bundle: string;
    }[]) {
      out.push({ where: `${f}#${r.id} (${r.rdrv_path})`, line: r.bundle, expectedHash: r.rdrv_hash });
    }
    db.close();
  }
  for (const f of files) {
    const text = readTextInput(f, 'bundles file');
    // a cache object keeps its rdrv in its name (traces/<hash>); other names bind nothing
    const name = basename(f);
    const expectedHash = /^[0-9a-df-np-sv-z]{32}$/.test(name) ? name : undefined;
    // JSON Lines of Sigstore bundles, or laut's {"signatures":[<JWS>…]} container
    splitTraceObject(text, f).forEach((line, i) => {
      out.push({ where: `${f}#${i + 1}`, line, ...(expectedHash ? { expectedHash } : {}) });
    });
  }
  return out;
}

function printVerdict(v: EvidenceVerdict, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(v, null, 2)}\n`);
    return;
  }
  const lines = [`${v.format} evidence: ${v.ok ? 'ACCEPTED' : 'REJECTED'} (verification time ${v.verificationTime})`];
  for (const s of v.steps) lines.push(`  ${s.ok === true ? 'ok  ' : s.ok === false ? 'FAIL' : 'n/a '} ${s.step.padEnd(24)} ${s.detail}`);
  lines.push('  fields:');
  for (const [k, val] of Object.entries(v.fields)) lines.push(`    ${k.padEnd(22)} ${typeof val === 'object' ? JSON.stringify(val) : String(val)}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

async function evidenceCommand(rest: string[]): Promise<number> {
  const a = parseArgs(rest, { booleans: ['json'], strings: ['report', 'vcek', 'vlek', 'roots', 'policy', 'at', 'preimage', 'key', 'collateral', 'crl'] });
  if (a.flags.has('help')) {
    process.stdout.write(`${HELP}\n`);
    return EXIT_OK;
  }
  const report = a.values.get('report');
  const roots = a.values.get('roots');
  if (!report) throw new BuildtraceError('USAGE', 'evidence needs --report FILE');
  if (!roots) throw new BuildtraceError('USAGE', 'evidence needs --roots DIR (the pinned vendor roots)');
  if (a.values.has('vcek') && a.values.has('vlek')) throw new BuildtraceError('USAGE', 'give --vcek or --vlek, not both');
  const vekFile = a.values.get('vcek') ?? a.values.get('vlek');
  const atText = a.values.get('at');
  const at = atText === undefined ? undefined : parseAt(atText);
  const policyFile = a.values.get('policy');
  const policy = policyFile ? loadTeePolicy(policyFile) : DEFAULT_TEE_POLICY;
  const collateralDir = a.values.get('collateral');
  const crlFile = a.values.get('crl');
  refuseEvidenceInRoots(roots, [report, ...(vekFile ? [vekFile] : []), ...(a.values.has('preimage') ? [a.values.get('preimage') as string] : [])]);
  const pinned = loadRoots(roots);
  if (pinned.length === 0) throw new BuildtraceError('USAGE', `no certificates under ${roots}`);
  // Binding: REPORT_DATA must be SHA-512 of the recorded preimage; with --key, the preimage must name that key.
  let expectedReportData: Buffer | undefined;
  const preimageFile = a.values.get('preimage');
  if (preimageFile) {
    const preimage = readInput(preimageFile, 'preimage');
    const binding = parsePreimage(preimage);
    const keyFile = a.values.get('key');
    if (keyFile) {
      const [k] = readKeys([keyFile]);
      if (binding.kind !== 'key') throw new BuildtraceError('USAGE', `${preimageFile} is a trace attestation, not a key attestation`);
      if (!k || !Buffer.from(k.raw).equals(Buffer.from(binding.publicKey))) {
        process.stderr.write(`trace-verify: ${preimageFile} binds another key than ${keyFile}\n`);
        return EXIT_REJECTED;
      }
    }
    expectedReportData = reportDataFor(preimage);
  } else if (a.values.has('key')) throw new BuildtraceError('USAGE', '--key needs --preimage (the recorded key attestation preimage)');
  const v = verifyEvidence(
    {
      ...(expectedReportData ? { expectedReportData } : {}),
      report: readInput(report, 'report'),
      ...(collateralDir ? { collateral: loadTdxCollateral(collateralDir) } : {}),
      ...(crlFile ? { crl: readInput(crlFile, 'CRL') } : {}),
      ...(vekFile ? { vek: readInput(vekFile, 'endorsement certificate'), declaredKind: a.values.has('vcek') ? ('VCEK' as const) : ('VLEK' as const) } : {}),
    },
    pinned,
    policy,
    at,
  );
  printVerdict(v, a.flags.has('json'));
  return v.ok ? EXIT_OK : EXIT_REJECTED;
}

function lastMileLines(m: NonNullable<VerifyOutput['lastMile']>): string[] {
  const lines: string[] = [];
  const per = new Map<string, number>();
  for (const c of m.checked) for (const w of c.against) per.set(w, (per.get(w) ?? 0) + 1);
  const rtUnchecked = m.unchecked.filter((u) => u.runtime);
  const rtChecked = m.checked.filter((c) => c.runtime).length;
  lines.push(
    `  last mile: ${m.checked.length} paths checked, ${m.mismatches.length} mismatching, ${m.unchecked.length} not known to any source; ` +
      `runtime closure ${m.runtimeClosure.length} paths: ${rtChecked} checked, ${rtUnchecked.length} unchecked${m.unattested.length > 0 ? `, ${m.unattested.length} unattested` : ''}` +
      (m.required ? ' (--require-last-mile)' : ''),
  );
  if (per.size > 0) lines.push(`    checked against: ${[...per].map(([w, n]) => `${w}: ${n}`).join('; ')}`);
  if (m.sources.length === 0) lines.push('    no cache or local store to check against');
  for (const u of rtUnchecked.slice(0, 10)) lines.push(`    unchecked (runtime): ${u.path}: ${u.reason}`);
  if (rtUnchecked.length > 10) lines.push(`    … ${rtUnchecked.length - 10} more (--json lists all)`);
  for (const n of m.notes) lines.push(`    note: ${n}`);
  return lines;
}

function printResult(r: VerifyOutput & { derivedMeasurements?: readonly DerivedChain[] }, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
    return;
  }
  const lines: string[] = [];
  if (r.verified) {
    lines.push(`VERIFIED ${r.target}`);
    for (const [n, p] of Object.entries(r.outputs)) lines.push(`  ${n.padEnd(8)} ${p}`);
    lines.push(`  ${r.derivationsChecked} derivations checked; signers: ${r.signers.join(', ') || '(none needed: fixed-output)'}; trust: ${r.trust}`);
  } else {
    lines.push(`NOT VERIFIED ${r.target}`);
    lines.push(
      `  ${r.derivationsChecked} derivations checked; trust: ${r.trust}; ${r.candidates} candidate output map(s) for the target${r.lastMile ? '; the trust verdict held, the last mile did not' : ''}`,
    );
    const seen = new Set<string>();
    // what blocks first; notes (problems where the verdict does not fail) after, marked
    const ordered = [...r.problems.filter((p) => p.blocking !== false), ...r.problems.filter((p) => p.blocking === false)];
    for (const p of ordered) {
      const line = `  ${p.blocking === false ? 'note: ' : ''}${p.drv}: ${p.code}: ${p.detail}${p.resolvedDrv ? ` [resolved ${p.resolvedDrv}]` : ''}${p.signer ? ` [signer ${p.signer}]` : ''}${p.where ? ` [${p.where}]` : ''}`;
      if (seen.has(line)) continue;
      seen.add(line);
      lines.push(line);
      if (seen.size >= 50) {
        lines.push(`  … ${r.problems.length - 50} more (--json lists all)`);
        break;
      }
    }
  }
  if (r.lastMile) lines.push(...lastMileLines(r.lastMile));
  if (r.derivedMeasurements) lines.push(...derivedLines(r.derivedMeasurements));
  for (const [k, s] of Object.entries(r.keyStatus)) if (!s.admitted) lines.push(`  key ${k} not admitted: ${s.detail}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

/** One line on the terminal, rewritten in place (\x1b[K clears what a longer line left). */
function showProgress(phase: 'load' | 'check', done: number, total?: number): void {
  const text = phase === 'load' ? `reading derivations: ${done}` : `${done}/${total ?? '?'} derivations checked`;
  process.stderr.write(`\rtrace-verify: ${text}\x1b[K${phase === 'check' && done === total ? '\n' : ''}`);
}

async function verifyCommand(target: string, rest: string[]): Promise<number> {
  const a = parseArgs(rest, {
    booleans: ['json', 'require-last-mile', 'no-local-store'],
    strings: ['policy', 'attr', 'at', 'nix-db', ...LIMIT_FLAGS],
    repeated: ['cache', 'db', 'output'],
  });
  if (a.flags.has('help')) {
    process.stdout.write(`${HELP}\n`);
    return EXIT_OK;
  }
  const policyFile = a.values.get('policy');
  if (!policyFile) throw new BuildtraceError('USAGE', 'verification needs --policy FILE');
  if (a.positionals.length > 0) throw new BuildtraceError('USAGE', `unexpected argument ${a.positionals[0]}`);
  const policy = loadTrustPolicy(policyFile);
  const { sources, facts, notes, store, limits } = await openConsumerSources(a);
  const loader = new DrvLoader('/nix/store', Number.POSITIVE_INFINITY);
  const doorFacts = storeTargetFacts(loader, a.values.get('nix-db') ?? DEFAULT_NIX_DB);
  const door = await resolveTarget(target, a.values.get('attr'), doorFacts, a.lists.get('output')).finally(() => doorFacts.close());
  const tty = process.stderr.isTTY === true;
  const atText = a.values.get('at');
  // measurements derived from verified builder images (snp.derivedFrom), before any key is admitted
  const derived = await deriveWithLocalStore(policy, a, { sources, facts, loader, limits });
  const verdict = await verifyWithLastMile(door.drv, {
    policy: derived.policy,
    sources,
    facts,
    loader,
    limits,
    requiredOutputs: door.outputs,
    requiredPaths: door.paths.size > 0 ? door.paths : undefined,
    at: atText ? parseAt(atText) : undefined,
    progress: tty ? showProgress : undefined,
    requireLastMile: a.flags.has('require-last-mile'),
    notes,
  }).finally(() => store?.close());
  const out = withDerived(verdict, derived.chains);
  printResult(out, a.flags.has('json'));
  if (process.env['BUILDTRACE_ED25519_REPORT'] === '1') process.stderr.write(`trace-verify: Ed25519 checks by engine: ${ed25519Report()}\n`);
  return out.verified ? EXIT_OK : EXIT_REJECTED;
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === '-h' || cmd === '--help') {
    process.stdout.write(`${HELP}\n`);
    return cmd === undefined ? 2 : EXIT_OK;
  }
  if (cmd === 'evidence') return evidenceCommand(rest);
  if (cmd === 'measure') return measureCommand(rest);
  if (cmd === 'serve') return serveCommand(rest);
  if (cmd === 'key') return keyCommand(rest, HELP);
  if (cmd === 'plan') return planCommand(rest);
  if (cmd === 'installed') return installedCommand(rest);
  if (cmd === 'bundles') {
    const a = parseArgs(rest, { booleans: ['json'], repeated: ['db', 'file', 'key'] });
    if (a.flags.has('help')) {
      process.stdout.write(`${HELP}\n`);
      return EXIT_OK;
    }
    const keys = readKeys(a.lists.get('key') ?? []);
    if (keys.length === 0) throw new BuildtraceError('USAGE', 'bundles needs at least one --key');
    const bundles = loadBundles(a.lists.get('db') ?? [], a.lists.get('file') ?? []);
    if (bundles.length === 0) throw new BuildtraceError('USAGE', 'no bundles found: give --db or --file');
    const results = bundles.map((b) => ({ where: b.where, check: checkBundle(b.line, keys, b.expectedHash ? { expectedHash: b.expectedHash } : {}) }));
    const bad = results.filter((r) => !r.check.ok);
    if (a.flags.has('json')) {
      process.stdout.write(
        `${JSON.stringify(
          {
            verified: bad.length === 0,
            checked: results.length,
            failures: bad.map((r) => ({ where: r.where, reason: r.check.ok ? '' : r.check.reason, detail: r.check.ok ? '' : r.check.detail })),
          },
          null,
          2,
        )}\n`,
      );
    } else {
      for (const r of bad) if (!r.check.ok) process.stdout.write(`FAIL ${r.where}: ${r.check.reason}: ${r.check.detail}\n`);
      process.stdout.write(`${results.length - bad.length} of ${results.length} bundles verify under ${keys.map((k) => k.name).join(', ')}\n`);
    }
    return bad.length === 0 ? EXIT_OK : EXIT_REJECTED;
  }
  if (cmd.startsWith('-')) throw new BuildtraceError('USAGE', `the target comes first; see trace-verify --help`);
  return verifyCommand(cmd, rest);
}

runCli('trace-verify', main);
