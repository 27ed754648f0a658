import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { computeStatus, type StatusFacts } from '../../agent/status.ts';

const base: StatusFacts = {
  phase: 'running',
  trustConfigured: true,
  uplink: 'none',
  clockTrusted: true,
  queue: { bytes: 0, maxBytes: 1000, droppedSinceStart: 0 },
  samplers: [],
  diskFull: false,
  storageFailing: false,
};

describe('computeStatus', () => {
  const rows: [string, Partial<StatusFacts>, string, string, string[]][] = [
    ['all well, off-grid', {}, 'ok', 'off_grid', []],
    ['no trust bundle is information, not a fault', { trustConfigured: false }, 'ok', 'off_grid', ['NO_TRUST_BUNDLE']],
    ['online', { uplink: 'connected' }, 'ok', 'online', []],
    ['uplink configured but down', { uplink: 'disconnected' }, 'ok', 'offline', []],
    ['clock unset', { clockTrusted: false }, 'degraded', 'off_grid', ['CLOCK_UNSET']],
    [
      'queue nearly full',
      { queue: { bytes: 950, maxBytes: 1000, droppedSinceStart: 0 } },
      'degraded',
      'off_grid',
      ['QUEUE_NEARLY_FULL'],
    ],
    [
      'queue dropping',
      { queue: { bytes: 1, maxBytes: 1000, droppedSinceStart: 3 } },
      'degraded',
      'off_grid',
      ['QUEUE_DROPPING'],
    ],
    [
      'a sampler failing',
      { samplers: [{ stream: 'a.b', consecutiveErrors: 3 }] },
      'degraded',
      'off_grid',
      ['SAMPLER_FAILING'],
    ],
    ['a sampler with one error', { samplers: [{ stream: 'a.b', consecutiveErrors: 1 }] }, 'ok', 'off_grid', []],
    ['disk full', { diskFull: true }, 'failing', 'off_grid', ['DISK_FULL']],
    ['storage failing', { storageFailing: true }, 'failing', 'off_grid', ['STORAGE_FAILING']],
    ['starting reports its phase', { phase: 'starting', diskFull: true }, 'starting', 'off_grid', ['DISK_FULL']],
    ['stopping reports its phase', { phase: 'stopping' }, 'stopping', 'off_grid', []],
  ];
  for (const [name, over, state, link, codes] of rows) {
    it(name, () => {
      const s = computeStatus({ ...base, ...over });
      assert.equal(s.state, state);
      assert.equal(s.link, link);
      assert.deepEqual(
        s.problems.map((p) => p.code),
        codes,
      );
    });
  }
});
