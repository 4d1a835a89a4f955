// The bench's turn-taking (src/engine/cli/benchTurns.ts): which steps each run is asked for, in
// which order, which are timed, and the spread it reports. No timing is asserted: the runs here
// return the numbers they were given.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { takeTurns, timing, TurnRun } from '../../src/engine/cli/benchTurns';

test('takeTurns: the runs alternate block by block, settling steps and warm-up are not timed', async () => {
  const log: string[] = [];
  const fake = (name: string): TurnRun => {
    let k = 0;
    return {
      before: () => log.push(`${name}:before`),
      block: async (n) => {
        log.push(`${name}:${n}`);
        // each step's "time" is its index in this run, so the kept ones say which steps were timed
        return Array.from({ length: n }, () => k++);
      },
    };
  };
  const [a, b] = await takeTurns([fake('a'), fake('b')], { steps: 7, warmup: 3 }, { block: 4, settle: 1 });
  // 10 steps in blocks of 4: 4, 4, 2; each asked for one more (the settling step)
  assert.deepEqual(log, ['a:before', 'a:5', 'b:before', 'b:5', 'a:before', 'a:5', 'b:before', 'b:5', 'a:before', 'a:3', 'b:before', 'b:3']);
  // kept: every block's steps after its settling one, minus the first 3 (warm-up)
  // a's indices: block 1 → 0 (settle), 1 2 3 4; block 2 → 5 (settle), 6 7 8 9; block 3 → 10 (settle), 11 12
  // the timed ones are 1..4, 6..9, 11..12 (10 steps); the first 3 of them (1, 2, 3) are warm-up
  assert.equal(a.steps, 7);
  assert.equal(b.steps, 7);
  assert.equal(a.ms, 8); // median of 4 6 7 8 9 11 12
  assert.deepEqual([a.p25, a.p75], [6.5, 10]);
});

test('timing: the median and the 25th/75th percentiles (linear between ranks)', () => {
  assert.deepEqual(timing([5, 1, 3]), { ms: 3, p25: 2, p75: 4, steps: 3 });
  assert.deepEqual(timing([4, 1, 3, 2]), { ms: 2.5, p25: 1.75, p75: 3.25, steps: 4 });
  assert.deepEqual(timing([7]), { ms: 7, p25: 7, p75: 7, steps: 1 });
});
