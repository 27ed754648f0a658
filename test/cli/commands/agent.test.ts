import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../../agent/config.ts';
import { linkTimings } from '../../../cli/commands/agent.ts';
import { isOutpostError } from '../../../protocol/errors.ts';

describe('link heartbeat settings', () => {
  it('default to a 60 s interval and a 30 s timeout', () => {
    assert.deepEqual(linkTimings(parseConfig('').link, {}), { heartbeatMs: 60_000, timeoutMs: 30_000 });
  });

  it('come from [link] in agent.toml', () => {
    const link = parseConfig('[link]\nheartbeat_s = 20\nheartbeat_timeout_s = 7.5\n').link;
    assert.deepEqual(linkTimings(link, {}), { heartbeatMs: 20_000, timeoutMs: 7_500 });
  });

  it('are overridden by the environment, which must hold milliseconds', () => {
    const link = parseConfig('[link]\nheartbeat_s = 20\n').link;
    assert.deepEqual(linkTimings(link, { OUTPOST_LINK_HEARTBEAT_MS: '700', OUTPOST_LINK_TIMEOUT_MS: '900' }), {
      heartbeatMs: 700,
      timeoutMs: 900,
    });
    assert.throws(
      () => linkTimings(link, { OUTPOST_LINK_HEARTBEAT_MS: '1s' }),
      (e) => isOutpostError(e) && e.code === 'CONFIG_INVALID',
    );
  });

  it('refuse out-of-range values with a located config error', () => {
    assert.throws(
      () => parseConfig('[link]\nheartbeat_s = 0\n'),
      (e) => isOutpostError(e) && /link\.heartbeat_s/.test(e.message),
    );
  });
});
