/**
 * One error type for the whole project (the sigstore-js pattern): a `code` that
 * callers can switch on, a message for people, and an optional field/file the
 * error is about. Exit codes are decided in exactly one place: `exitCodeFor`.
 */
export type ErrorCode =
  // format errors (pure parsers)
  | 'NIX32_INVALID'
  | 'HASH_INVALID'
  | 'STORE_PATH_INVALID'
  | 'ATERM_INVALID'
  | 'DERIVATION_INVALID'
  | 'RESOLUTION_FAILED'
  | 'NARINFO_INVALID'
  | 'KEY_INVALID'
  | 'JSON_INVALID'
  | 'BUNDLE_INVALID'
  | 'CERT_INVALID'
  | 'EVIDENCE_INVALID'
  // configuration and usage
  | 'USAGE'
  | 'CONFIG_INVALID'
  | 'POLICY_INVALID'
  | 'FILE_UNREADABLE'
  // runtime
  | 'SPOOL_RECORD_INVALID'
  | 'STORE_QUERY_FAILED'
  | 'DAEMON_NOT_RUNNING'
  | 'DAEMON_ERROR'
  /** Another daemon holds the stateDir or the socket (exit 2: a configuration problem). */
  | 'DAEMON_CONFLICT'
  /** The daemon's database is corrupt, missing or replaced. */
  | 'DATABASE_ERROR'
  | 'NOT_FOUND'
  | 'TEE_UNAVAILABLE'
  | 'CACHE_ERROR'
  /** a bound on untrusted input (object bytes, line bytes, lines, request time) was hit */
  | 'LIMIT_EXCEEDED'
  /** a bug: an exception that is no decided refusal (a TypeError, a broken invariant); exit 70 */
  | 'INTERNAL'
  /** the requested target cannot be established as the outputs of an unresolved derivation (src/verify/target.ts) */
  | 'TARGET_REFUSED'
  /** a NAR's bytes differ from the attested hash or size (the substituter cut it off) */
  | 'NAR_MISMATCH'
  /** a firmware image's OVMF footer table or SEV metadata is malformed (no measurement from it) */
  | 'FIRMWARE_INVALID'
  /** a builder image output lacks the documented layout (firmware.fd, kernel, initrd, cmdline) */
  | 'IMAGE_INVALID';

export class BuildtraceError extends Error {
  readonly code: ErrorCode;
  /** The field, file or store path the error is about, when there is one. */
  readonly subject: string | undefined;

  constructor(code: ErrorCode, message: string, options?: { subject?: string; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'BuildtraceError';
    this.code = code;
    this.subject = options?.subject;
  }
}

export const EXIT_OK = 0;
/** The thing asked about is not acceptable (verification failed, not found). */
export const EXIT_REJECTED = 1;
/** Usage error, unreadable or malformed input, daemon unreachable. */
const EXIT_USAGE = 2;

/** trace-daemon is not running or not reachable. */
const EXIT_DAEMON = 3;

/**
 * An internal error: a bug, never a verdict (sysexits' EX_SOFTWARE). Kept apart from 1 and 2
 * so that a crash on hostile input is never mistaken for a correct refusal.
 */
export const EXIT_INTERNAL = 70;

/** A refusal the code decided on (a BuildtraceError other than INTERNAL); anything else is a bug. */
export function isDecided(err: unknown): err is BuildtraceError {
  return err instanceof BuildtraceError && err.code !== 'INTERNAL';
}

/**
 * For catch blocks that turn a failure into a verdict (malformed bundle, evidence rejected):
 * returns a decided refusal and rethrows everything else, so a bug surfaces as INTERNAL
 * instead of passing as a refusal.
 */
export function decidedOrThrow(err: unknown): BuildtraceError {
  if (isDecided(err)) return err;
  throw err;
}

export function exitCodeFor(err: unknown): number {
  if (err instanceof BuildtraceError) {
    switch (err.code) {
      case 'NOT_FOUND':
        return EXIT_REJECTED;
      case 'LIMIT_EXCEEDED':
        return EXIT_USAGE;
      case 'DAEMON_NOT_RUNNING':
      case 'DAEMON_ERROR':
        return EXIT_DAEMON;
      case 'INTERNAL':
        return EXIT_INTERNAL;
      default:
        return EXIT_USAGE;
    }
  }
  return isSystemError(err) ? EXIT_USAGE : EXIT_INTERNAL;
}

/** An operating-system error (ENOENT, EACCES, EPIPE…): the environment refused, not a bug. */
function isSystemError(err: unknown): boolean {
  return err instanceof Error && typeof (err as NodeJS.ErrnoException).syscall === 'string';
}

export function errorMessage(err: unknown): string {
  if (err instanceof BuildtraceError) return err.message;
  if (err instanceof Error) return err.message;
  return String(err);
}

/** What a command prints for an error that ends it: internal errors are labelled as such, with their type. */
export function reportedMessage(err: unknown): string {
  if (exitCodeFor(err) !== EXIT_INTERNAL) return errorMessage(err);
  const what = err instanceof BuildtraceError ? 'INTERNAL' : err instanceof Error ? err.name : typeof err;
  return `internal error (a bug, not a verdict): ${what}: ${errorMessage(err)}`;
}
