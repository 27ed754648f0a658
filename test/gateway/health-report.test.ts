import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loraHealthBody, radioHealthReport } from '../../gateway/health-report.ts';
import type { RadioHealth } from '../../gateway/radio-link.ts';
import { LoraHealth } from '../../protocol/lora-relay.ts';

const empty = {
  buckets: [
    { le: -100, count: 0 },
    { le: '+Inf' as const, count: 0 },
  ],
  count: 0,
  sum: 0,
};

function health(patch: Partial<RadioHealth> = {}): RadioHealth {
  return {
    name: 'rnode0',
    kind: 'rnode',
    path: '/dev/ttyUSB0',
    state: 'ready',
    firmware: '1.85',
    present: true,
    ready: true,
    readyTransitions: 1,
    maxFrameBytes: 254,
    airtime: { totalMs: 1234.6, windowMs: 600.2, budgetUsed: 0.0167 },
    frames: { received: 9, stored: 6, dropped: { unknown_device: 2, duplicate: 1 }, sent: 4, sendFailed: {} },
    rssiDbm: {
      buckets: [
        { le: -100, count: 3 },
        { le: '+Inf', count: 9 },
      ],
      count: 9,
      sum: -855.5,
    },
    snrDb: empty,
    lastRxWallMs: 1_767_225_600_150.7,
    lastTxWallMs: null,
    ...patch,
  };
}

describe('gateway health report', () => {
  it('maps a radio: drops summed, airtime and times whole ms, an empty histogram as null', () => {
    assert.deepEqual(radioHealthReport(health()), {
      name: 'rnode0',
      kind: 'rnode',
      state: 'ready',
      ready: true,
      airtime: { windowMs: 600, budgetUsed: 0.0167, totalMs: 1235 },
      frames: { received: 9, sent: 4, dropped: 3 },
      rssiDbm: {
        buckets: [
          { le: -100, count: 3 },
          { le: '+Inf', count: 9 },
        ],
        count: 9,
        sum: -855.5,
      },
      snrDb: null,
      lastRxMs: 1_767_225_600_151,
    });
  });

  const cases: [string, Partial<RadioHealth>, (r: ReturnType<typeof radioHealthReport>) => void][] = [
    [
      'an absent radio that never heard anything',
      { state: 'absent', present: false, ready: false, rssiDbm: empty, lastRxWallMs: null },
      (r) => assert.deepEqual([r.state, r.ready, r.rssiDbm, r.lastRxMs], ['absent', false, null, null]),
    ],
    [
      'an unknown budget (NaN) reads as 0',
      { airtime: { totalMs: 0, windowMs: 0, budgetUsed: Number.NaN } },
      (r) => assert.equal(r.airtime.budgetUsed, 0),
    ],
    [
      'an overrun budget stays above 1',
      { airtime: { totalMs: 40_000, windowMs: 37_000, budgetUsed: 1.03 } },
      (r) => assert.equal(r.airtime.budgetUsed, 1.03),
    ],
  ];
  for (const [name, patch, check] of cases) it(name, () => check(radioHealthReport(health(patch))));

  it('the body decodes as lora.health, with at most 8 radios', () => {
    const radios = Array.from({ length: 10 }, (_, i) => health({ name: `r${i}` }));
    const body = loraHealthBody(radios, 17, 2.0000001);
    assert.equal(body.radios.length, 8);
    assert.deepEqual([body.uplinkBacklog, body.downlinkBacklog], [17, 2]);
    assert.deepEqual(LoraHealth.parse(body), body);
  });
});
