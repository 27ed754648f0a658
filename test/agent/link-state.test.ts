import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backoffDelayMs, DEFAULT_BACKOFF, nextAttempt } from '../../agent/link-backoff.ts';
import { computeLinkState, isConnected, type LinkFacts, tokenRefreshAtMs } from '../../agent/link-state.ts';

const base: LinkFacts = {
  enrolled: true,
  revoked: false,
  stopped: false,
  tokenExpiresAtMs: 10_000_000,
  nowMs: 1_000_000,
  socketOpen: true,
  handshakeDone: true,
  silentForMs: 1000,
  heartbeatMs: 60_000,
  timeoutMs: 30_000,
  backingOff: false,
};

describe('link state from facts', () => {
  const table: [string, Partial<LinkFacts>, ReturnType<typeof computeLinkState>][] = [
    ['open and recently heard from', {}, 'online'],
    ['stopped wins over everything', { stopped: true, revoked: true }, 'stopped'],
    ['not enrolled', { enrolled: false, socketOpen: false, handshakeDone: false }, 'not_enrolled'],
    ['revoked', { revoked: true }, 'revoked'],
    ['open, no hello.ack yet', { handshakeDone: false }, 'handshaking'],
    ['silent past one interval and the timeout: half-open', { silentForMs: 90_001 }, 'stale'],
    ['silent for exactly interval + timeout is still online', { silentForMs: 90_000 }, 'online'],
    ['closed, token expired', { socketOpen: false, handshakeDone: false, nowMs: 10_000_000 }, 'token_expired'],
    ['closed, waiting out a backoff', { socketOpen: false, handshakeDone: false, backingOff: true }, 'backoff'],
    ['closed, dialling', { socketOpen: false, handshakeDone: false }, 'connecting'],
    [
      'closed with no token at all: dialling (a token is fetched first)',
      { socketOpen: false, handshakeDone: false, tokenExpiresAtMs: null },
      'connecting',
    ],
  ];
  for (const [name, change, expected] of table) {
    it(name, () => assert.equal(computeLinkState({ ...base, ...change }), expected));
  }
  it('only online counts as connected for the pump', () => {
    for (const s of ['online', 'stale', 'handshaking', 'backoff'] as const)
      assert.equal(isConnected(s), s === 'online');
  });
});

describe('backoff', () => {
  it('grows exponentially to the cap, with full jitter, never zero', () => {
    const p = { baseMs: 1000, capMs: 60_000, stableMs: 60_000 };
    assert.equal(backoffDelayMs(0, p, 0.999999), 1000);
    assert.equal(backoffDelayMs(3, p, 0.5), 4000);
    assert.equal(backoffDelayMs(10, p, 0.999999), 60_000);
    assert.equal(backoffDelayMs(100, p, 0.999999), 60_000);
    assert.equal(backoffDelayMs(5, p, 0), 320); // 1 % of the ceiling at least
  });
  it('resets after a stable session, grows after a short one or a failed dial', () => {
    assert.equal(nextAttempt(4, 60_000, DEFAULT_BACKOFF), 0);
    assert.equal(nextAttempt(4, 59_999, DEFAULT_BACKOFF), 5);
    assert.equal(nextAttempt(4, null, DEFAULT_BACKOFF), 5);
  });
});

describe('token refresh time', () => {
  it('is at 80 % of the lifetime, or a minute before expiry for short tokens', () => {
    assert.equal(tokenRefreshAtMs(0, 3_600_000), 2_880_000);
    assert.equal(tokenRefreshAtMs(0, 120_000), 60_000);
  });
});
