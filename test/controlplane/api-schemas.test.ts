// Every HTTP body decoder is total: any text decodes to its typed value or throws a typed error (fuzzed), and
// golden bodies decode.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  AcceptManifestRequest,
  AnchorRequest,
  ApproveRequest,
  CreateTenantRequest,
  DeviceChallengeRequest,
  DeviceTokenRequest,
  decodeBody,
  EnrollRequest,
  EnrollTokenRequest,
  MintTokenRequest,
  PolicyRequest,
  RevokeDeviceRequest,
  RevokeTokenRequest,
} from '../../controlplane/api-schemas.ts';
import { isControlPlaneError } from '../../controlplane/errors.ts';
import { toBase64Url } from '../../protocol/bytes.ts';
import { SimDevice } from '../support/controlplane.ts';
import { assertDecoderTotal, jsonTextInputs } from '../support/fuzz.ts';

const device = new SimDevice('fuzz-device');
const sig = toBase64Url(new Uint8Array(64).fill(7));
const key = toBase64Url(new Uint8Array(32).fill(9));
const TID = '2f2e6b6a-7c1e-5a3d-9c5e-0d6b0a1c2b3d';

const GOLDEN: [string, Parameters<typeof decodeBody>[0], unknown][] = [
  [
    'enroll-token',
    EnrollTokenRequest,
    { ttlSeconds: 3600, role: 'device', labels: { site: 'north' }, holdManifest: true },
  ],
  ['enroll', EnrollRequest, device.enrollBody(`oet_${'A'.repeat(43)}`, key)],
  ['challenge', DeviceChallengeRequest, { device: device.did }],
  ['device token', DeviceTokenRequest, { v: 1, device: device.did, challenge: 'abc.def', proof: sig }],
  ['manifest accept', AcceptManifestRequest, { manifestHash: `sha256:${'a'.repeat(64)}` }],
  ['revoke device', RevokeDeviceRequest, { reason: 'stolen' }],
  ['revoke token', RevokeTokenRequest, { jti: 'j'.repeat(22), untilMs: 5, reason: 'leaked' }],
  [
    'policy',
    PolicyRequest,
    {
      approvers: [{ id: 'ann', publicKey: key }],
      rules: [
        { tool: 'valve.*', k: 1 },
        { safetyClass: 'physical_actuation', k: 2 },
      ],
      ifVersion: 3,
    },
  ],
  [
    'token mint',
    MintTokenRequest,
    { role: 'actuator', subject: 'alice@example.org', scopes: [`${TID}/*/*:call`], ttlSeconds: 600 },
  ],
  ['approve', ApproveRequest, { approver: 'ann', sig }],
  ['tenant', CreateTenantRequest, { name: 'farm-2' }],
  [
    'anchor',
    AnchorRequest,
    { checkpoint: { body: { v: 1, head_seq: 5, head_mac: key, count: 5, ts: 1, key_id: device.did }, signature: sig } },
  ],
];

describe('HTTP body decoders', () => {
  for (const [name, schema, golden] of GOLDEN) {
    it(`${name}: decodes its golden body and refuses unknown members`, () => {
      assert.deepEqual(decodeBody(schema, JSON.stringify(golden), 1 << 20), golden);
      assert.throws(
        () => decodeBody(schema, JSON.stringify({ ...(golden as object), surprise: 1 }), 1 << 20),
        (e) => isControlPlaneError(e, 'BAD_REQUEST'),
      );
      assert.throws(
        () => decodeBody(schema, JSON.stringify(golden), 8),
        (e) => isControlPlaneError(e, 'BODY_TOO_LARGE'),
      );
    });
    it(`${name}: is total over fuzzed input`, () => {
      const r = assertDecoderTotal(jsonTextInputs([golden]), (text) => decodeBody(schema, text, 64 * 1024));
      assert.ok(r.rejected > 0 && r.accepted > 0, `accepted ${r.accepted}, rejected ${r.rejected}`);
      for (const code of r.codes.keys()) assert.ok(['BAD_REQUEST', 'BODY_TOO_LARGE'].includes(code), code);
    });
  }
});
