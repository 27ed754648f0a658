import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type AirtimeVerdict,
  type PlanCandidate,
  type PlanRadio,
  type PlanStep,
  planDownlink,
} from '../../gateway/downlink-planner.ts';

function radio(name: string, o: Partial<Omit<PlanRadio, 'verdict'>> & { verdict?: AirtimeVerdict } = {}): PlanRadio {
  const verdict: AirtimeVerdict = o.verdict ?? { allowed: true };
  return {
    name,
    idle: o.idle ?? true,
    ready: o.ready ?? true,
    maxFrameBytes: o.maxFrameBytes ?? 254,
    airtimesMs: o.airtimesMs ?? ((bytes) => bytes.map((b) => b)),
    verdict: () => verdict,
  };
}

const c = (id: string, o: Partial<PlanCandidate> = {}): PlanCandidate => ({
  id,
  shortIdHex: o.shortIdHex ?? '00000001',
  priority: o.priority ?? 4,
  dueInMs: o.dueInMs ?? 0,
  frameBytes: o.frameBytes ?? [50],
  attempts: o.attempts ?? 0,
});

const rows: {
  name: string;
  candidates: PlanCandidate[];
  radios: PlanRadio[];
  heard?: Record<string, string>;
  expect: PlanStep;
}[] = [
  { name: 'nothing queued', candidates: [], radios: [radio('a')], expect: { kind: 'idle' } },
  {
    name: 'highest priority first',
    candidates: [c('low', { priority: 5 }), c('high', { priority: 1 })],
    radios: [radio('a')],
    expect: { kind: 'send', id: 'high', radio: 'a', airtimesMs: [50] },
  },
  {
    name: 'same priority: earliest due first',
    candidates: [c('later', { dueInMs: -5 }), c('earlier', { dueInMs: -50 })],
    radios: [radio('a')],
    expect: { kind: 'send', id: 'earlier', radio: 'a', airtimesMs: [50] },
  },
  {
    name: 'not due yet: wait until it is',
    candidates: [c('x', { dueInMs: 1500 })],
    radios: [radio('a')],
    expect: { kind: 'wait', inMs: 1500 },
  },
  {
    name: 'budget used up: wait for the law, lower priority does not jump the queue on that radio',
    candidates: [c('big', { priority: 1, frameBytes: [200] }), c('small', { priority: 6, frameBytes: [20] })],
    radios: [radio('a', { verdict: { allowed: false, reason: 'duty-cycle', retryAfterMs: 7000 } })],
    expect: { kind: 'wait', inMs: 7000 },
  },
  {
    name: 'a frame the law never allows fails (US915 dwell time)',
    candidates: [c('long', { frameBytes: [200] })],
    radios: [radio('a', { verdict: { allowed: false, reason: 'dwell-time' } })],
    expect: { kind: 'fail', id: 'long', reason: 'dwell_time' },
  },
  {
    name: 'frames larger than every radio’s profile fail as too_large',
    candidates: [c('huge', { frameBytes: [100, 250] })],
    radios: [radio('mesh', { maxFrameBytes: 233 })],
    expect: { kind: 'fail', id: 'huge', reason: 'too_large' },
  },
  {
    name: 'goes out on the radio that last heard the device',
    candidates: [c('x', { shortIdHex: 'aaaaaaaa' })],
    radios: [radio('a'), radio('b')],
    heard: { aaaaaaaa: 'b' },
    expect: { kind: 'send', id: 'x', radio: 'b', airtimesMs: [50] },
  },
  {
    name: 'a device never heard is tried on each radio in turn',
    candidates: [c('x', { attempts: 3 })],
    radios: [radio('a'), radio('b')],
    expect: { kind: 'send', id: 'x', radio: 'b', airtimesMs: [50] },
  },
  {
    name: 'busy radio: its queue waits, another radio’s item proceeds',
    candidates: [
      c('on-a', { priority: 0, shortIdHex: 'aaaaaaaa' }),
      c('on-b', { priority: 5, shortIdHex: 'bbbbbbbb' }),
    ],
    radios: [radio('a', { idle: false }), radio('b')],
    heard: { aaaaaaaa: 'a', bbbbbbbb: 'b' },
    expect: { kind: 'send', id: 'on-b', radio: 'b', airtimesMs: [50] },
  },
  {
    name: 'radio not ready: nothing to do until its status changes',
    candidates: [c('x')],
    radios: [radio('a', { ready: false, idle: false })],
    expect: { kind: 'idle' },
  },
  {
    name: 'modulation not known yet (Meshtastic before its handshake)',
    candidates: [c('x')],
    radios: [radio('a', { airtimesMs: () => undefined })],
    expect: { kind: 'idle' },
  },
  {
    name: 'a fragmented message is sent whole',
    candidates: [c('frag', { frameBytes: [233, 233, 90] })],
    radios: [radio('a', { maxFrameBytes: 233 })],
    expect: { kind: 'send', id: 'frag', radio: 'a', airtimesMs: [233, 233, 90] },
  },
  {
    name: 'an item not yet due does not hold its radio',
    candidates: [c('urgent-later', { priority: 0, dueInMs: 5000 }), c('now', { priority: 7 })],
    radios: [radio('a')],
    expect: { kind: 'send', id: 'now', radio: 'a', airtimesMs: [50] },
  },
];

describe('planDownlink', () => {
  for (const row of rows) {
    it(row.name, () => {
      const heard = row.heard ?? {};
      assert.deepEqual(
        planDownlink({ candidates: row.candidates, radios: row.radios, lastHeardOn: (id) => heard[id] }),
        row.expect,
      );
    });
  }
});
