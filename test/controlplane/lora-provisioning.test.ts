// Trust material for LoRa-only devices (lora-frames.md §4.11): a device does not acknowledge CONTROL, so the control
// plane sends a change again on later hearings of the device — one round at a time, each once the gateway reported
// the previous one done — until its rounds are spent.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { authenticate } from '../../controlplane/auth.ts';
import { mintEnrollToken } from '../../controlplane/enrollment.ts';
import { PROVISION_REPEATS } from '../../controlplane/lora-endpoint.ts';
import { enrollOverLora } from '../../controlplane/lora-enrollment.ts';
import type { SessionHandle } from '../../controlplane/ports.ts';
import { toBase64Url } from '../../protocol/bytes.ts';
import { FakeClock } from '../../protocol/clock.ts';
import { didKeyFromEd25519 } from '../../protocol/did-key.ts';
import {
  decodeControl,
  deriveLoraSessionKeys,
  encodeTelemetry,
  openEnrollResponse,
  openLoraFrame,
  sealEnrollRequest,
  sealLoraFrame,
  x25519KeyPair,
} from '../../protocol/lora.ts';
import { manifestHash } from '../../protocol/manifest.ts';
import { ed25519KeyPair } from '../../protocol/signing.ts';
import { greenhouseManifest } from '../support/controlplane.ts';
import { createCoreHarness } from '../support/hub-harness.ts';

const GATEWAY = 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK';

interface Downlink {
  downlinkId: string;
  priority: number;
  frames: string[];
}

async function site() {
  const clock = new FakeClock(Date.UTC(2026, 5, 1));
  const h = await createCoreHarness(clock);
  const ctx = h.cp.context;
  const op = await authenticate(ctx, `Bearer ${h.operatorKey}`, 'test');
  const key = ed25519KeyPair();
  const x = x25519KeyPair();
  const did = didKeyFromEd25519(key.publicKey);
  const manifest = greenhouseManifest(did, 'field-7');
  const minted = await mintEnrollToken(ctx, op, { manifest: manifest as unknown as Record<string, unknown> });
  const request = sealEnrollRequest({
    device: key,
    deviceX25519Public: x.publicKey,
    token: minted.token,
    manifestHash: Buffer.from(manifestHash(manifest).slice('sha256:'.length), 'hex'),
    seq: 1,
  });
  const answer = await enrollOverLora(ctx, request, GATEWAY, h.tid);
  assert.equal(openEnrollResponse(answer!.frame, { request, token: minted.token }).status, 'accepted');
  const session = deriveLoraSessionKeys({
    deviceX25519: x,
    controlPlaneX25519: { publicKey: ctx.vault.lora.publicKey },
    tid: h.tid,
    deviceId: did,
  });

  const downlinks: Downlink[] = [];
  const gateway = {
    sessionId: 'gw-session',
    device: GATEWAY,
    tid: h.tid,
    role: 'gateway',
    connectedAtMs: clock.nowMs(),
    manifestHash: () => 'sha256:00',
    close: () => {},
    send: (type: string, body: unknown) => {
      if (type === 'lora.downlink') downlinks.push(body as Downlink);
    },
  } as unknown as SessionHandle;
  ctx.sessions.register(gateway);

  let seq = 2;
  let relaySeq = 1;
  const settle = async () => {
    for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
  };
  /** The gateway relays one reading of the device: the control plane hears it. */
  const hear = async () => {
    const s = seq++;
    const frame = sealLoraFrame(
      session,
      { type: 'telemetry', seq: s },
      encodeTelemetry([{ seq: s, stream: 0, ts: clock.nowMs(), value: s }]),
      { maxFrameBytes: 254 },
    );
    await ctx.lora.onUplink(GATEWAY, h.tid, {
      frames: [
        {
          stream: 'telemetry',
          seq: relaySeq++,
          frame: toBase64Url(frame),
          radio: 'rnode0',
          rssiDbm: -90,
          snrDb: 5,
          rxMs: 0,
        },
      ],
    });
    await settle();
  };
  /** CONTROL downlinks (priority 0) sent so far, opened as the device opens them. */
  const controls = () =>
    downlinks
      .filter((d) => d.priority === 0)
      .map((d) => {
        const frame = Buffer.from(d.frames[0]!, 'base64url');
        const opened = openLoraFrame(frame, session, { expect: 'downlink' });
        return { id: d.downlinkId, kind: decodeControl(opened.payload).kind };
      });
  /** The gateway reports these downlinks done: every attempt made. */
  const done = (ids: readonly string[]) =>
    ctx.lora.onReport(GATEWAY, {
      reports: ids.map((downlinkId) => ({
        downlinkId,
        state: 'failed' as const,
        attempts: 2,
        reason: 'max_attempts' as const,
        lastTxMs: clock.nowMs(),
        radio: 'rnode0',
      })),
    });
  return { h, ctx, clock, did, hear, controls, done };
}

describe('LoRa trust provisioning at the control plane', () => {
  it('sends a change again on later hearings, one round at a time after the gateway is done with the last', async () => {
    const s = await site();
    try {
      await s.hear();
      const first = s.controls();
      const kinds = first.map((c) => c.kind).sort();
      assert.ok(kinds.includes('issuer') && kinds.includes('jwks'), `first round: ${kinds}`);

      // Heard again while the first round is still queued at the gateway: nothing piles up behind it.
      await s.hear();
      assert.equal(s.controls().length, first.length);

      let seen = first;
      for (let round = 1; round <= PROVISION_REPEATS; round++) {
        s.done(seen.map((c) => c.id));
        await s.hear();
        const now = s.controls();
        const repeat = now.slice(seen === first ? first.length : now.length - first.length);
        assert.deepEqual(repeat.map((c) => c.kind).sort(), kinds, `round ${round + 1} repeats the same material`);
        assert.equal((await s.ctx.store.loraProvisioned(s.did))?.repeat?.left ?? 0, PROVISION_REPEATS - round);
        seen = repeat;
      }
      // The rounds are spent: further hearings send nothing until something changes (or the daily refresh).
      s.done(seen.map((c) => c.id));
      const total = s.controls().length;
      await s.hear();
      await s.hear();
      assert.equal(s.controls().length, total);
      assert.equal(total, first.length * (1 + PROVISION_REPEATS));
      assert.equal((await s.ctx.store.loraProvisioned(s.did))?.repeat, undefined);
    } finally {
      s.h.close();
    }
  });

  it('does not wait forever on a round the gateway never reports on', async () => {
    const s = await site();
    try {
      await s.hear();
      const first = s.controls().length;
      s.clock.advance(14 * 60_000);
      await s.hear();
      assert.equal(s.controls().length, first, 'still in flight');
      s.clock.advance(2 * 60_000);
      await s.hear();
      assert.equal(s.controls().length, 2 * first, 'past 15 min the round no longer holds the next');
    } finally {
      s.h.close();
    }
  });
});
