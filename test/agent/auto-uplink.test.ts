import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createAutoUplink } from '../../agent/auto-uplink.ts';
import type { Uplink, UplinkBinding, UplinkState } from '../../agent/uplink.ts';
import { silentLogger } from '../../protocol/log.ts';
import type { Lease, SeqRange } from '../../store/outbox.ts';

/** A link whose state the test sets; deliver acknowledges the lease under the link's name. */
function fakeLink(name: string) {
  let state: UplinkState = 'disconnected';
  const listeners = new Set<(s: UplinkState) => void>();
  const delivered: number[] = [];
  const bound: UplinkBinding[] = [];
  let started = 0;
  let stopped = 0;
  const link: Uplink = {
    name,
    state: () => state,
    onStateChange(l) {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    async deliver(lease: Lease): Promise<readonly SeqRange[]> {
      delivered.push(lease.id);
      return [{ stream: name, from: lease.id, to: lease.id }];
    },
    bind: (b) => {
      bound.push(b);
    },
    async start() {
      started++;
    },
    async stop() {
      stopped++;
    },
  };
  return {
    link,
    delivered,
    bound,
    counts: () => ({ started, stopped }),
    set(s: UplinkState) {
      state = s;
      for (const l of [...listeners]) l(s);
    },
  };
}

const lease = (id: number): Lease => ({ id, items: [], expiresAtStoreMs: 0 });

describe('auto uplink', () => {
  it('sends over WSS while it is connected, over LoRa otherwise, and fails when neither is up', async () => {
    const wss = fakeLink('wss');
    const lora = fakeLink('lora0');
    const auto = createAutoUplink({ primary: wss.link, fallback: lora.link, log: silentLogger });
    const states: UplinkState[] = [];
    auto.onStateChange((s) => states.push(s));
    await auto.start();
    await assert.rejects(auto.deliver(lease(1)), { code: 'LINK_DOWN' });
    lora.set('connected');
    assert.equal(auto.state(), 'connected');
    await auto.deliver(lease(2));
    wss.set('connected');
    await auto.deliver(lease(3));
    wss.set('disconnected');
    await auto.deliver(lease(4));
    lora.set('disconnected');
    assert.equal(auto.state(), 'disconnected');
    assert.deepEqual(wss.delivered, [3]);
    assert.deepEqual(lora.delivered, [2, 4]);
    // Connected once, then disconnected once: switching links while one stays up is not a state change.
    assert.deepEqual(states, ['connected', 'disconnected']);
    assert.deepEqual(auto.detail?.(), {
      mode: 'auto',
      using: null,
      wss: { state: 'disconnected' },
      lora0: { state: 'disconnected' },
    });
    await auto.stop();
    assert.deepEqual(wss.counts(), { started: 1, stopped: 1 });
    assert.deepEqual(lora.counts(), { started: 1, stopped: 1 });
  });

  it('binds both links, so tool calls arriving on either reach the agent', () => {
    const wss = fakeLink('wss');
    const lora = fakeLink('lora0');
    const auto = createAutoUplink({ primary: wss.link, fallback: lora.link, log: silentLogger });
    const binding = { manifestHash: 'sha256:00' } as unknown as UplinkBinding;
    auto.bind?.(binding);
    assert.deepEqual(wss.bound, [binding]);
    assert.deepEqual(lora.bound, [binding]);
  });
});
