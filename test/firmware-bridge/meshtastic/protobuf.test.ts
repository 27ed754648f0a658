// The hand-written protobuf subset against the official generated code (@meshtastic/protobufs as an
// oracle): every message both ways with generated values, unknown-field skipping, malformed input, fuzz.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DescMessage } from '@bufbuild/protobuf';
import fc from 'fast-check';
import { MeshtasticError } from '../../../firmware-bridge/meshtastic/errors.ts';
import {
  createData,
  createLoRaConfig,
  createMeshPacket,
  createNodeInfo,
  createUser,
  DATA_ENCODED_MAX_BYTES,
  DATA_PAYLOAD_MAX_BYTES,
  decodeData,
  decodeFromRadio,
  decodeMeshPacket,
  decodeRouting,
  decodeToRadio,
  encodeData,
  encodeFromRadio,
  encodeMeshPacket,
  encodeRouting,
  encodeToRadio,
  isPlausibleFromRadio,
  isPlausibleToRadio,
  nodeIdOf,
  PortNum,
  routingErrorName,
} from '../../../firmware-bridge/meshtastic/protobuf.ts';
import { assertDecoderTotal, byteInputs, fuzzCases } from '../../support/fuzz.ts';
import { dataArb, fromRadioArb, meshPacketArb, routingArb, toRadioArb } from '../../support/meshtastic-arbitraries.ts';
import { fromPb, Mesh, oracleDecode, oracleEncode, toPb } from '../../support/meshtastic-oracle.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const runs = Math.max(500, Math.floor(fuzzCases() / 5));

interface Case<T> {
  name: string;
  arb: fc.Arbitrary<T>;
  schema: DescMessage;
  encode: (v: T) => Uint8Array;
  decode: (b: Uint8Array) => T;
  toPb: (v: T) => Record<string, unknown>;
  fromPb: (m: never) => T;
}

const cases: Case<never>[] = [
  {
    name: 'Data',
    arb: dataArb,
    schema: Mesh.DataSchema,
    encode: encodeData,
    decode: decodeData,
    toPb: toPb.data,
    fromPb: fromPb.data,
  } as unknown as Case<never>,
  {
    name: 'MeshPacket',
    arb: meshPacketArb,
    schema: Mesh.MeshPacketSchema,
    encode: encodeMeshPacket,
    decode: decodeMeshPacket,
    toPb: toPb.meshPacket,
    fromPb: fromPb.meshPacket,
  } as unknown as Case<never>,
  {
    name: 'Routing',
    arb: routingArb,
    schema: Mesh.RoutingSchema,
    encode: encodeRouting,
    decode: decodeRouting,
    toPb: toPb.routing,
    fromPb: fromPb.routing,
  } as unknown as Case<never>,
  {
    name: 'ToRadio',
    arb: toRadioArb,
    schema: Mesh.ToRadioSchema,
    encode: encodeToRadio,
    decode: decodeToRadio,
    toPb: toPb.toRadio,
    fromPb: fromPb.toRadio,
  } as unknown as Case<never>,
  {
    name: 'FromRadio (every variant, hence MyNodeInfo, NodeInfo, User, DeviceMetadata, Channel, Config, LoRaConfig, QueueStatus, LogRecord, ClientNotification)',
    arb: fromRadioArb,
    schema: Mesh.FromRadioSchema,
    encode: encodeFromRadio,
    decode: decodeFromRadio,
    toPb: toPb.fromRadio,
    fromPb: fromPb.fromRadio,
  } as unknown as Case<never>,
];

describe('meshtastic protobuf subset against the official schema', () => {
  for (const c of cases) {
    it(`${c.name}: ours → official decodes to the same value, and the bytes are identical`, () => {
      fc.assert(
        fc.property(c.arb, (value) => {
          const ours = c.encode(value);
          const theirs = oracleEncode(c.schema, c.toPb(value));
          assert.equal(hex(ours), hex(theirs));
          assert.deepEqual(c.fromPb(oracleDecode(c.schema, ours) as never), value);
        }),
        { numRuns: runs },
      );
    });

    it(`${c.name}: official → ours decodes to the same value`, () => {
      fc.assert(
        fc.property(c.arb, (value) => {
          const theirs = oracleEncode(c.schema, c.toPb(value));
          assert.deepEqual(c.decode(theirs), value);
        }),
        { numRuns: runs },
      );
    });
  }

  it('skips fields it does not model (position, device metrics, delayed, macaddr, channel_num, newer tags)', () => {
    const bytes = oracleEncode(Mesh.FromRadioSchema, {
      id: 7,
      payloadVariant: {
        case: 'nodeInfo',
        value: {
          num: 0x1234,
          user: { id: '!00001234', longName: 'Ridge', macaddr: new Uint8Array([1, 2, 3, 4, 5, 6]) },
          position: { latitudeI: 473_000_000, longitudeI: 85_000_000, altitude: 500 },
          deviceMetrics: { batteryLevel: 90, voltage: 4.1 },
          snr: 6.5,
        },
      },
    });
    const decoded = decodeFromRadio(bytes);
    assert.deepEqual(decoded, {
      id: 7,
      payload: {
        kind: 'nodeInfo',
        nodeInfo: createNodeInfo({ num: 0x1234, user: createUser({ id: '!00001234', longName: 'Ridge' }), snr: 6.5 }),
      },
    });
    const packet = oracleEncode(Mesh.MeshPacketSchema, { id: 9, delayed: 1, from: 3 });
    assert.deepEqual(decodeMeshPacket(packet), createMeshPacket({ id: 9, from: 3 }));
  });

  it('skips unknown fields of every wire type, including nested groups, anywhere in a message', () => {
    const unknowns = [
      'b01f2a', // field 502 varint
      'b91f0102030405060708', // field 503 fixed64
      'c21f03616263', // field 504 length-delimited
      'cd1f01020304', // field 505 fixed32
      'd31f0801db1f0802dc1fd41f', // field 506 group containing a varint and a nested group 507
    ].join('');
    const body = encodeFromRadio({ id: 5, payload: { kind: 'configCompleteId', configCompleteId: 42 } });
    const spliced = Buffer.concat([Buffer.from(unknowns, 'hex'), body, Buffer.from(unknowns, 'hex')]);
    assert.deepEqual(decodeFromRadio(spliced), {
      id: 5,
      payload: { kind: 'configCompleteId', configCompleteId: 42 },
    });
    const lora = createLoRaConfig({ region: 3, hopLimit: 3, usePreset: true });
    const cfg = encodeFromRadio({ id: 0, payload: { kind: 'config', config: { kind: 'lora', lora } } });
    // Insert an unknown field inside the LoRaConfig: rebuild by hand: 2a <len> 32 <len> <lora+unknown>
    const loraBytes = Buffer.concat([Buffer.from(cfg.subarray(4)), Buffer.from('b01f01', 'hex')]);
    const config = Buffer.concat([Buffer.from([0x32, loraBytes.length]), loraBytes]);
    const msg = Buffer.concat([Buffer.from([0x2a, config.length]), config]);
    assert.deepEqual(decodeFromRadio(msg), { id: 0, payload: { kind: 'config', config: { kind: 'lora', lora } } });
  });

  it('accepts repeated scalars both packed and unpacked', () => {
    // LoRaConfig.ignore_incoming (103): a packed run [1, 2], then 3 and 4 as single varints
    const lora = Buffer.from('ba06020102b80603b80604', 'hex');
    const config = Buffer.concat([Buffer.from([0x32, lora.length]), lora]);
    const msg = Buffer.concat([Buffer.from([0x2a, config.length]), config]);
    const d = decodeFromRadio(msg);
    if (d.payload.kind === 'config' && d.payload.config.kind === 'lora') {
      assert.deepEqual(d.payload.config.lora.ignoreIncoming, [1, 2, 3, 4]);
    } else assert.fail('expected a LoRa config');
    const official = oracleDecode(Mesh.FromRadioSchema, msg);
    assert.deepEqual(fromPb.fromRadio(official), d);
  });

  const malformed: [string, string, string][] = [
    ['truncated varint', '08', 'MT_PB_TRUNCATED'],
    ['varint longer than 10 bytes', `08${'ff'.repeat(10)}01`, 'MT_PB_BAD_VARINT'],
    ['varint overflowing 64 bits', `08${'ff'.repeat(9)}02`, 'MT_PB_BAD_VARINT'],
    ['field number 0', '0001', 'MT_PB_BAD_TAG'],
    ['wire type 6', '0e', 'MT_PB_BAD_WIRE_TYPE'],
    ['wire type 7', '0f', 'MT_PB_BAD_WIRE_TYPE'],
    ['length past the end', '1205080102', 'MT_PB_TRUNCATED'],
    ['nested length past the end', '120422050801', 'MT_PB_TRUNCATED'],
    ['fixed32 cut short', 'f5010102', 'MT_PB_TRUNCATED'],
    ['fixed64 cut short', 'f101010203', 'MT_PB_TRUNCATED'],
    ['known field with the wrong wire type', '3a0100', 'MT_PB_WIRE_TYPE_MISMATCH'],
    ['end group without a start', 'f401', 'MT_PB_BAD_WIRE_TYPE'],
    ['group closed by another field', 'b31fbc1f', 'MT_PB_BAD_WIRE_TYPE'],
    ['group never closed', 'b31f0801', 'MT_PB_TRUNCATED'],
    ['groups nested too deep', 'b31f'.repeat(150), 'MT_PB_TOO_DEEP'],
  ];
  for (const [name, h, code] of malformed) {
    it(`rejects ${name} with ${code}`, () => {
      assert.throws(
        () => decodeFromRadio(Buffer.from(h, 'hex')),
        (e: unknown) => e instanceof MeshtasticError && e.code === code,
      );
    });
  }

  it('rejects input above the frame limit with MT_PB_TOO_LARGE', () => {
    assert.throws(
      () => decodeFromRadio(new Uint8Array(513)),
      (e: unknown) => e instanceof MeshtasticError && e.code === 'MT_PB_TOO_LARGE',
    );
    assert.throws(
      () => decodeToRadio(new Uint8Array(600)),
      (e: unknown) => e instanceof MeshtasticError && e.code === 'MT_PB_TOO_LARGE',
    );
  });

  it('refuses to encode out-of-range numbers with MT_PB_INVALID_VALUE', () => {
    for (const bad of [-1, 2 ** 32, 1.5, Number.NaN]) {
      assert.throws(
        () => encodeToRadio({ payload: { kind: 'wantConfigId', wantConfigId: bad } }),
        (e: unknown) => e instanceof MeshtasticError && e.code === 'MT_PB_INVALID_VALUE',
      );
    }
  });

  it('truncates wide varints to 32 bits like protobuf (uint32 and int32)', () => {
    // FromRadio.config_complete_id = 2^32 + 5 → 5
    assert.deepEqual(decodeFromRadio(Buffer.from('388580808010', 'hex')).payload, {
      kind: 'configCompleteId',
      configCompleteId: 5,
    });
    // QueueStatus.res = -1 as a 10-byte varint
    const qs = Buffer.from(`5a0b08${'ff'.repeat(9)}01`, 'hex');
    const d = decodeFromRadio(qs);
    assert.equal(d.payload.kind === 'queueStatus' && d.payload.queueStatus.res, -1);
  });

  it('keeps the oneof member that comes last', () => {
    const a = encodeFromRadio({ id: 0, payload: { kind: 'rebooted', rebooted: true } });
    const b = encodeFromRadio({ id: 0, payload: { kind: 'configCompleteId', configCompleteId: 9 } });
    assert.deepEqual(decodeFromRadio(Buffer.concat([a, b])).payload, { kind: 'configCompleteId', configCompleteId: 9 });
    assert.deepEqual(oracleDecode(Mesh.FromRadioSchema, Buffer.concat([a, b])).payloadVariant, {
      case: 'configCompleteId',
      value: 9,
    });
  });

  it('decodes names cut in the middle of a UTF-8 sequence instead of dropping the frame', () => {
    const user = Buffer.from('0a02c328', 'hex'); // id = 0xC3 0x28 (invalid UTF-8)
    const node = Buffer.concat([Buffer.from('0801', 'hex'), Buffer.from([0x12, user.length]), user]);
    const msg = Buffer.concat([Buffer.from([0x22, node.length]), node]);
    const d = decodeFromRadio(msg);
    assert.equal(d.payload.kind === 'nodeInfo' && d.payload.nodeInfo.user?.id, '\ufffd(');
  });

  it('limits and constants match the firmware: 233-byte payload, 239-byte Data', () => {
    const data = createData({ portnum: PortNum.PRIVATE_APP, payload: new Uint8Array(DATA_PAYLOAD_MAX_BYTES) });
    assert.equal(encodeData(data).length, DATA_ENCODED_MAX_BYTES);
    assert.equal(nodeIdOf(0xa1b2c3d4), '!a1b2c3d4');
    assert.equal(nodeIdOf(5), '!00000005');
    assert.equal(routingErrorName(5), 'MAX_RETRANSMIT');
    assert.equal(routingErrorName(99), 'ROUTING_ERROR_99');
  });

  it('plausibility checks need a payload variant', () => {
    assert.equal(isPlausibleFromRadio(new Uint8Array(0)), false);
    assert.equal(isPlausibleFromRadio(Buffer.from('0805', 'hex')), false); // id only
    assert.equal(isPlausibleFromRadio(Buffer.from('4001', 'hex')), true); // rebooted
    assert.equal(isPlausibleFromRadio(Buffer.from('0e', 'hex')), false);
    assert.equal(isPlausibleToRadio(Buffer.from('1801', 'hex')), true); // want_config_id 1
    assert.equal(isPlausibleToRadio(Buffer.from('ff', 'hex')), false);
  });
});

describe('meshtastic protobuf decoders are total (fuzz)', () => {
  const seedsFrom = <T>(arb: fc.Arbitrary<T>, encode: (v: T) => Uint8Array) =>
    fc.sample(arb, { numRuns: 40, seed: 7 }).map(encode);
  const decoders: [string, (b: Uint8Array) => unknown, Uint8Array[]][] = [
    ['FromRadio', decodeFromRadio, seedsFrom(fromRadioArb, encodeFromRadio)],
    ['ToRadio', decodeToRadio, seedsFrom(toRadioArb, encodeToRadio)],
    ['MeshPacket', decodeMeshPacket, seedsFrom(meshPacketArb, encodeMeshPacket)],
    ['Data', decodeData, seedsFrom(dataArb, encodeData)],
    ['Routing', decodeRouting, seedsFrom(routingArb, encodeRouting)],
  ];
  for (const [name, decode, seeds] of decoders) {
    it(`decode${name} accepts or throws MeshtasticError, never anything else`, () => {
      const { accepted, rejected } = assertDecoderTotal(byteInputs(seeds, 600), decode);
      assert.ok(accepted > 0 && rejected > 0, `both outcomes seen (accepted ${accepted}, rejected ${rejected})`);
    });
  }
});
