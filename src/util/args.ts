import { BuildtraceError } from '../errors.js';

interface ArgSpec {
  /** Flags without a value. */
  readonly booleans?: readonly string[];
  /** Options taking one value. */
  readonly strings?: readonly string[];
  /** Options that may repeat. */
  readonly repeated?: readonly string[];
}

interface ParsedArgs {
  readonly positionals: string[];
  readonly flags: Set<string>;
  readonly values: Map<string, string>;
  readonly lists: Map<string, string[]>;
}

/** Minimal, strict parser: `--name value`, `--name=value`, unknown options are errors. */
export function parseArgs(argv: readonly string[], spec: ArgSpec): ParsedArgs {
  const out: ParsedArgs = { positionals: [], flags: new Set(), values: new Map(), lists: new Map() };
  const booleans = new Set(spec.booleans ?? []);
  const strings = new Set(spec.strings ?? []);
  const repeated = new Set(spec.repeated ?? []);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--') {
      out.positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!a.startsWith('-') || a === '-') {
      out.positionals.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = (eq >= 0 ? a.slice(0, eq) : a).replace(/^-+/, '');
    const norm = name === 'h' ? 'help' : name;
    if (booleans.has(norm) || norm === 'help') {
      if (eq >= 0) throw new BuildtraceError('USAGE', `--${norm} takes no value`);
      out.flags.add(norm);
      continue;
    }
    if (strings.has(norm) || repeated.has(norm)) {
      let v: string | undefined;
      if (eq >= 0) v = a.slice(eq + 1);
      else v = argv[++i];
      if (v === undefined) throw new BuildtraceError('USAGE', `--${norm} needs a value`);
      if (repeated.has(norm)) out.lists.set(norm, [...(out.lists.get(norm) ?? []), v]);
      else {
        if (out.values.has(norm)) throw new BuildtraceError('USAGE', `--${norm} given twice`);
        out.values.set(norm, v);
      }
      continue;
    }
    throw new BuildtraceError('USAGE', `unknown option ${a}`);
  }
  return out;
}
