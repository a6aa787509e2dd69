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

test('Limiter: a bounded wait is rejected past its bound, out of the queue, holding no slot; an unbounded one still runs', { timeout: 10_000 }, async () => {
  const limiter = new Limiter(2);
  const gates: (() => void)[] = [];
  const held = [0, 1].map((i) => limiter.run(() => new Promise<number>((r) => gates.push(() => r(i)))));
  const t0 = Date.now();
  const bounded = limiter.run(async () => 'ran', { maxMs: 150, tooLong: (ms) => new Error(`waited ${ms} ms`) });
  const unbounded = limiter.run(async () => 'later');
  await assert.rejects(bounded, /waited \d+ ms/);
  const waited = Date.now() - t0;
  assert.ok(waited >= 140 && waited < 2000, `${waited} ms`);
  // the slots are still held: the timed-out call never ran and took no slot
  assert.equal(gates.length, 2);
  // a bounded wait that gets its slot in time runs, and its timer does not fire later
  const inTime = limiter.run(async () => 'in time', { maxMs: 5000, tooLong: () => new Error('too long') });
  (gates[0] as () => void)();
  (gates[1] as () => void)();
  assert.deepEqual(await Promise.all([...held, unbounded, inTime]), [0, 1, 'later', 'in time']);
  // all slots free again: two at once run without waiting
  assert.deepEqual(await Promise.all([limiter.run(async () => 1, { maxMs: 1, tooLong: () => new Error('x') }), limiter.run(async () => 2)]), [1, 2]);
});
