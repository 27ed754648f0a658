import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type LinkFacts, type LinkState, linkState } from '../../gateway/link-state.ts';

const base: LinkFacts = {
  enrolled: true,
  tokenUsable: true,
  socketOpen: true,
  sessionEstablished: true,
  receiveSilenceMs: 1_000,
  sendSilenceMs: 1_000,
  heartbeatMs: 30_000,
  handshakeTimeoutMs: 10_000,
  radios: [
    { name: 'a', state: 'ready' },
    { name: 'b', state: 'ready' },
  ],
};

const rows: { name: string; facts: Partial<LinkFacts>; expect: Partial<LinkState> }[] = [
  {
    name: 'everything up',
    facts: {},
    expect: { backhaul: 'up', forward: true, ping: false, reconnect: false, connect: false, summary: 'ok' },
  },
  {
    name: 'not enrolled: nothing to connect to, radios still listen',
    facts: { enrolled: false, socketOpen: false, sessionEstablished: false },
    expect: { backhaul: 'unenrolled', forward: false, connect: false, transmit: true, summary: 'unenrolled' },
  },
  {
    name: 'token expired while connected: drop the socket',
    facts: { tokenUsable: false },
    expect: { backhaul: 'unauthorised', forward: false, reconnect: true, connect: false },
  },
  {
    name: 'token expired and closed: do not dial',
    facts: { tokenUsable: false, socketOpen: false, sessionEstablished: false },
    expect: { backhaul: 'unauthorised', reconnect: false, connect: false, summary: 'store-and-forward' },
  },
  {
    name: 'backhaul down, radios up: store and forward',
    facts: { socketOpen: false, sessionEstablished: false, receiveSilenceMs: null, sendSilenceMs: null },
    expect: { backhaul: 'down', forward: false, connect: true, transmit: true, summary: 'store-and-forward' },
  },
  {
    name: 'handshake in time',
    facts: { sessionEstablished: false, receiveSilenceMs: 9_999 },
    expect: { backhaul: 'handshaking', forward: false, reconnect: false },
  },
  {
    name: 'handshake overdue',
    facts: { sessionEstablished: false, receiveSilenceMs: 10_000 },
    expect: { backhaul: 'handshaking', reconnect: true },
  },
  {
    name: 'quiet for a heartbeat: ping',
    facts: { sendSilenceMs: 30_000 },
    expect: { backhaul: 'up', ping: true, reconnect: false },
  },
  {
    name: 'nothing received for just under 3 heartbeats: still up',
    facts: { receiveSilenceMs: 89_999 },
    expect: { backhaul: 'up', forward: true },
  },
  {
    name: 'nothing received for 3 heartbeats: stale, reconnect',
    facts: { receiveSilenceMs: 90_000 },
    expect: { backhaul: 'stale', forward: false, reconnect: true, ping: false },
  },
  {
    name: 'one radio unplugged',
    facts: {
      radios: [
        { name: 'a', state: 'ready' },
        { name: 'b', state: 'absent' },
      ],
    },
    expect: { radios: 'partial', transmit: true, summary: 'degraded' },
  },
  {
    name: 'all radios gone, backhaul up: keeps forwarding what it has',
    facts: {
      radios: [
        { name: 'a', state: 'error' },
        { name: 'b', state: 'opening' },
      ],
    },
    expect: { radios: 'down', transmit: false, forward: true, summary: 'radio-down' },
  },
  {
    name: 'no radio, no backhaul',
    facts: { socketOpen: false, sessionEstablished: false, radios: [{ name: 'a', state: 'absent' }] },
    expect: { summary: 'isolated', transmit: false, forward: false },
  },
];

describe('linkState', () => {
  for (const row of rows) {
    it(row.name, () => {
      const got = linkState({ ...base, ...row.facts });
      for (const [k, v] of Object.entries(row.expect)) {
        assert.equal(got[k as keyof LinkState], v, `${k} of ${JSON.stringify(got)}`);
      }
    });
  }

  it('never forwards without an established, fresh session', () => {
    for (const socketOpen of [false, true])
      for (const sessionEstablished of [false, true])
        for (const tokenUsable of [false, true])
          for (const receiveSilenceMs of [0, 100_000]) {
            const s = linkState({ ...base, socketOpen, sessionEstablished, tokenUsable, receiveSilenceMs });
            const fresh = socketOpen && sessionEstablished && tokenUsable && receiveSilenceMs < 90_000;
            assert.equal(s.forward, fresh);
          }
  });
});
