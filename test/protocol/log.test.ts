import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createMemoryLogger, formatLogLine, type LogFormat } from '../../protocol/log.ts';

const FORMATS: LogFormat[] = ['json', 'logfmt', 'journald'];
const SECRET = 'c2VjcmV0LXZhbHVlLXRoYXQtbXVzdC1uZXZlci1zaG93';

describe('log lines', () => {
  it('one line per event, with the syslog priority under journald', () => {
    assert.equal(formatLogLine('journald', 'warning', 'a\nb', { n: 1 }, 0), '<4>a b n=1');
    assert.equal(formatLogLine('logfmt', 'info', 'e', { s: 'x y' }, 0), '1970-01-01T00:00:00.000Z info    e s="x y"');
  });

  it('never prints a field whose name says it holds a secret', () => {
    for (const format of FORMATS) {
      const line = formatLogLine(format, 'info', 'e', { token: SECRET, enrollToken: SECRET, seed: SECRET }, 0);
      assert.ok(!line.includes(SECRET), `${format}: ${line}`);
    }
  });

  it('secret leak through nesting: secret-named members inside objects and arrays are redacted too', () => {
    const fields = {
      request: { headers: { authorization: `Bearer ${SECRET}` }, body: { token: SECRET } },
      calls: [{ callId: 'c1', quorum: { approvals: [{ sig: 'ok' }] }, caller: { apiKey: SECRET } }],
    };
    for (const format of FORMATS) {
      const line = formatLogLine(format, 'info', 'e', fields, 0);
      assert.ok(!line.includes(SECRET), `${format}: ${line}`);
      assert.ok(line.includes('c1'), 'other members are kept');
    }
  });

  it('key leak through bytes: byte arrays are shown by length, never by content', () => {
    const key = new Uint8Array(32).fill(0xab);
    const session = { shortId: Uint8Array.of(1, 2, 3, 4), uplinkKey: key, downlinkKey: key };
    for (const format of FORMATS) {
      const line = formatLogLine(format, 'info', 'e', { session, raw: Buffer.from(key) }, 0);
      assert.ok(!/171|ab,?ab|"0":/.test(line), `${format}: ${line}`);
      assert.ok(line.includes('32 bytes'), `${format}: ${line}`);
    }
  });

  it('a logger never throws on what it is given (cycles, bigint, deep nesting)', () => {
    const { logger, lines } = createMemoryLogger();
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    let deep: unknown = 'leaf';
    for (let i = 0; i < 10_000; i++) deep = { d: deep };
    logger.info('e', { cyclic, big: 10n, deep, err: new Error('boom') });
    assert.equal(lines.length, 1);
  });
});
