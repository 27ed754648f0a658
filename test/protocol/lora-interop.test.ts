// The LoRa forms of other contracts' values (lora-frames.md §4.4.1, §4.6.2, §4.6.3, §4.11) carry them losslessly:
// quorum tokens from the quorum vectors verify after a trip over a LoRa session, runtime tokens come back character
// for character, telemetry records come back with their stream names, and a policy arrives as the same document.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fromBase64Url, toBase64Url } from '../../protocol/bytes.ts';
import { FakeClock } from '../../protocol/clock.ts';
import { shortIdOf } from '../../protocol/did-key.ts';
import { isOutpostError } from '../../protocol/errors.ts';
import {
  createLoraReassembler,
  decodeControl,
  decodeTelemetry,
  decodeToolCall,
  deriveLoraSessionKeys,
  encodeControl,
  encodeTelemetry,
  encodeToolCall,
  LORA_PROFILES,
  type LoraSession,
  type LoraToolCall,
  openLoraFrame,
  sealLoraMessage,
  x25519KeyPair,
} from '../../protocol/lora.ts';
import {
  type ApprovalRequest,
  argsHash,
  type QuorumPolicy,
  type QuorumToken,
  verifyQuorum,
} from '../../protocol/quorum.ts';
import type { TelemetryRecord } from '../../protocol/telemetry.ts';
import { vectorJson } from '../support/protocol-vectors.ts';

const deviceDid = 'did:key:z6MktwupdmLXVVqTzCw4i46r4uGyosGXRnR3XjN4Zq7oMMsw';

interface QuorumFile {
  policy: QuorumPolicy;
  verifyAtMs: number;
  vectors: {
    name: string;
    tool: string;
    args: unknown;
    request: ApprovalRequest;
    approvals: QuorumToken['approvals'];
  }[];
}

function sessionsFor(tid: string, deviceId: string): { device: LoraSession; controlPlane: LoraSession } {
  const dev = x25519KeyPair();
  const cp = x25519KeyPair();
  return {
    device: deriveLoraSessionKeys({
      deviceX25519: dev,
      controlPlaneX25519: { publicKey: cp.publicKey },
      tid,
      deviceId,
    }),
    controlPlane: deriveLoraSessionKeys({
      deviceX25519: { publicKey: dev.publicKey },
      controlPlaneX25519: cp,
      tid,
      deviceId,
    }),
  };
}

/** Control plane → air → device: seal as a message, open and reassemble, return the payload. */
function overTheAir(
  from: LoraSession,
  to: LoraSession,
  type: 'tool.call' | 'control',
  payload: Uint8Array,
): Uint8Array {
  const reassembler = createLoraReassembler({ clock: new FakeClock() });
  const frames = sealLoraMessage(from, { type, firstSeq: 100 }, payload, LORA_PROFILES.meshtastic);
  for (const f of frames) {
    const r = reassembler.add(openLoraFrame(f, to, { expect: 'downlink' }));
    if (r.status === 'complete') return r.message.payload;
  }
  throw new Error('message did not complete');
}

describe('LoRa interop with the quorum contract', () => {
  const file = vectorJson<QuorumFile>('quorum', 'quorum-tokens.json');

  for (const v of file.vectors) {
    for (const form of ['approver ids', 'approver short ids'] as const) {
      it(`${v.name}: the token rebuilt on the device from a LoRa tool.call verifies (${form})`, () => {
        const { request } = v;
        const { device, controlPlane } = sessionsFor(request.tid, request.device);
        // Control plane side: only what the call does not imply travels (§4.6.2).
        const call: LoraToolCall = {
          callId: 'AAECAwQFBgcICQoLDA0ODw',
          tool: { name: request.tool },
          deadlineMs: request.expMs,
          quorum: {
            requestId: request.requestId,
            nonce: request.nonce,
            expMs: request.expMs,
            approvals: v.approvals.map((a) => ({
              approver:
                form === 'approver ids'
                  ? { id: a.approver }
                  : {
                      shortId: shortIdOf(
                        fromBase64Url(file.policy.approvers.find((p) => p.id === a.approver)!.publicKey),
                      ),
                    },
              signature: fromBase64Url(a.sig),
            })),
          },
          args: v.args as LoraToolCall['args'],
        };
        const received = decodeToolCall(overTheAir(controlPlane, device, 'tool.call', encodeToolCall(call)));
        // Device side: rebuild the token from the session, the call and the policy.
        const q = received.quorum!;
        const tool = 'name' in received.tool ? received.tool.name : '';
        const token: QuorumToken = {
          request: {
            v: 1,
            tid: request.tid,
            requestId: q.requestId,
            device: request.device,
            tool,
            argsHash: argsHash(received.args),
            nonce: q.nonce,
            expMs: q.expMs,
          },
          approvals: q.approvals.map((a) => ({
            approver:
              'id' in a.approver
                ? a.approver.id
                : file.policy.approvers.find(
                    (p) =>
                      Buffer.compare(
                        shortIdOf(fromBase64Url(p.publicKey)),
                        (a.approver as { shortId: Uint8Array }).shortId,
                      ) === 0,
                  )!.id,
            sig: toBase64Url(a.signature),
          })),
        };
        assert.deepEqual(token.request, request);
        const options = {
          policy: file.policy,
          tid: request.tid,
          device: request.device,
          tool,
          args: received.args,
          clock: new FakeClock(file.verifyAtMs),
        };
        assert.doesNotThrow(() => verifyQuorum(token, options));
        // The same token no longer verifies for other arguments: the hash is recomputed from what arrived.
        assert.throws(
          () => verifyQuorum(token, { ...options, args: { ...(received.args as object), extra: 1 } }),
          (e: unknown) => isOutpostError(e, 'QUORUM_ARGS_MISMATCH'),
        );
      });
    }
  }
});

describe('LoRa interop with the tokens contract', () => {
  const tokens = vectorJson<{ vectors: { name: string; hybrid: boolean; token: string }[] }>(
    'tokens',
    'runtime-tokens.json',
  );
  const plain = tokens.vectors.filter((t) => !t.hybrid);
  const hybrid = tokens.vectors.filter((t) => t.hybrid);

  it('an EdDSA runtime token comes back character for character over the air, at 3/4 of its text size', () => {
    assert.ok(plain.length > 0);
    for (const t of plain) {
      const { device, controlPlane } = sessionsFor('0e6c3a3d-952c-55af-be8a-3d562dcf52c7', deviceDid);
      const call: LoraToolCall = { callId: 'c1', tool: { index: 0 }, token: t.token, args: {} };
      const payload = encodeToolCall(call);
      assert.equal(decodeToolCall(overTheAir(controlPlane, device, 'tool.call', payload)).token, t.token);
      assert.ok(payload.length < (t.token.length * 3) / 4 + 16, `${t.name}: ${payload.length} bytes`);
    }
  });

  it('a hybrid token (four segments, ML-DSA-65) is refused: it cannot travel over LoRa', () => {
    assert.ok(hybrid.length > 0);
    for (const t of hybrid) {
      assert.throws(
        () => encodeToolCall({ callId: 'c1', tool: { index: 0 }, token: t.token, args: {} }),
        (e: unknown) => isOutpostError(e, 'LORA_VALUE_UNSUPPORTED'),
      );
    }
  });
});

describe('LoRa interop with telemetry records and policies', () => {
  it('telemetry records map to stream indexes and back without loss', () => {
    const streams = ['air.temperature', 'air.humidity', 'door.open', 'pump.state'];
    const records: TelemetryRecord[] = [
      { seq: 41, stream: 'air.temperature', ts: 1_767_225_600_000, value: 21.5 },
      { seq: 42, stream: 'air.humidity', ts: 1_767_225_600_000, value: 48 },
      { seq: 43, stream: 'door.open', ts: 1_767_225_601_250, value: true, quality: ['estimated'] },
      { seq: 44, stream: 'pump.state', ts: 1_767_225_602_000, value: 'priming', quality: ['stale', 'substituted'] },
      { seq: 45, stream: 'air.temperature', ts: 1_767_225_660_000, value: 21.4 },
    ];
    const lora = records.map(({ stream, ...r }) => ({ ...r, stream: streams.indexOf(stream) }));
    const back: TelemetryRecord[] = decodeTelemetry(encodeTelemetry(lora)).map(({ stream, value, quality, ...r }) => ({
      ...r,
      stream: streams[stream]!,
      value: value as TelemetryRecord['value'],
      ...(quality ? { quality: [...quality] } : {}),
    }));
    const bySeq = (a: TelemetryRecord, b: TelemetryRecord) => a.seq - b.seq;
    assert.deepEqual(back.sort(bySeq), [...records].sort(bySeq));
  });

  it('the quorum policy arrives as the same document', () => {
    const { policy } = vectorJson<QuorumFile>('quorum', 'quorum-tokens.json');
    const { device, controlPlane } = sessionsFor(policy.tid, deviceDid);
    const payload = overTheAir(
      controlPlane,
      device,
      'control',
      encodeControl({ kind: 'quorum-policy', value: policy }),
    );
    assert.deepEqual(decodeControl(payload), { kind: 'quorum-policy', value: policy });
  });
});
