import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Limiter } from '../src/util/limiter.js';

test('Limiter: never more than max in flight, every call runs once, failures free their slot', async () => {
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 1, max: 8 }), fc.array(fc.tuple(fc.nat(3), fc.boolean()), { minLength: 1, maxLength: 60 }), async (max, jobs) => {
      const limiter = new Limiter(max);
      let active = 0;
      let peak = 0;
      const ran: number[] = [];
      const settled = await Promise.allSettled(
        jobs.map(([delay, fail], i) =>
          limiter.run(async () => {
            active++;
            peak = Math.max(peak, active);
            await new Promise((r) => setTimeout(r, delay));
            active--;
            ran.push(i);
            if (fail) throw new Error(`job ${i}`);
            return i;
          }),
        ),
      );
      assert.ok(peak <= max, `peak ${peak} > max ${max}`);
      assert.equal(peak, Math.min(max, jobs.length), 'the limit is used, not just respected');
      assert.deepEqual(
        [...ran].sort((a, b) => a - b),
        jobs.map((_, i) => i),
      );
      settled.forEach((s, i) => {
        assert.equal(s.status, (jobs[i] as [number, boolean])[1] ? 'rejected' : 'fulfilled');
      });
    }),
    { numRuns: 60 },
  );
  assert.throws(() => new Limiter(0), /at least 1/);
});
