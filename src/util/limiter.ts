/**
 * At most `max` calls in flight; the rest wait their turn in order. Keeps a verifier that
 * starts thousands of cache reads at once from opening thousands of connections (Node's
 * global HTTP agent has no socket limit). A caller may bound its wait for a slot: past it,
 * the call is dropped from the queue and rejected with the error `tooLong` makes.
 */
/** How long a caller waits for a slot, and the error it gets past that. */
interface BoundedWait {
  readonly maxMs: number;
  readonly tooLong: (waitedMs: number) => Error;
}

/** The longest delay a Node timer takes (a longer one fires at once). */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class Limiter {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly max: number) {
    if (!(max >= 1)) throw new RangeError(`Limiter: max must be at least 1, got ${max}`);
  }

  async run<T>(fn: () => Promise<T>, wait?: BoundedWait): Promise<T> {
    if (this.active < this.max) this.active++;
    // a finishing call hands its slot straight to the next waiter
    else await this.turn(wait);
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }

  /** Resolves when a finishing call hands over its slot; rejects (out of the queue, holding no slot) past `wait.maxMs`. */
  private turn(wait: BoundedWait | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (!wait) {
        this.waiting.push(resolve);
        return;
      }
      const t0 = Date.now();
      const handOver = (): void => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(
        () => {
          const i = this.waiting.indexOf(handOver);
          if (i >= 0) this.waiting.splice(i, 1);
          reject(wait.tooLong(Date.now() - t0));
        },
        Math.min(wait.maxMs, MAX_TIMER_MS),
      );
      this.waiting.push(handOver);
    });
  }
}
