import { DEFAULT_READ_LIMITS, runLimitExceeded, type ReadLimits } from '../cache/limits.js';

/**
 * Work bounds per run (not per object), against hostile caches and dishonest signers: how
 * many unknown key hints are tried against measured identities, and how many TEE evidence
 * lines may fail verification. Each bound, when hit, stops the run with LIMIT_EXCEEDED
 * naming it (exit 2), never a hang; honest runs stay far below them.
 */
export class RunBudget {
  private readonly hints = new Set<string>();
  private failures = 0;
  constructor(private readonly limits: Pick<ReadLimits, 'maxKeyHints' | 'maxEvidenceChecks'> = DEFAULT_READ_LIMITS) {}

  /** A key hint about to be tried (each distinct one counts once). */
  keyHint(fingerprint: string): void {
    if (this.hints.has(fingerprint)) return;
    if (this.hints.size >= this.limits.maxKeyHints) {
      throw runLimitExceeded('maxKeyHints', this.limits.maxKeyHints, `bundles name more than ${this.limits.maxKeyHints} keys the policy does not name`);
    }
    this.hints.add(fingerprint);
  }

  /** A piece of TEE evidence that was verified and did not pass. */
  evidenceFailed(where: string): void {
    if (++this.failures > this.limits.maxEvidenceChecks) {
      throw runLimitExceeded('maxEvidenceChecks', this.limits.maxEvidenceChecks, `more TEE evidence lines failed verification, the last at ${where}`);
    }
  }
}
