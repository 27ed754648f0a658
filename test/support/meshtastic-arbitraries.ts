// fast-check generators of Meshtastic protobuf values (our shapes), covering every field of the subset.

import type { DescMessage } from '@bufbuild/protobuf';
import fc from 'fast-check';
import {
  type Channel,
  type ChannelSettings,
  type ClientNotification,
  type Config,
  createChannel,
  createChannelSettings,
  createClientNotification,
  createData,
  createDeviceMetadata,
  createLogRecord,
  createLoRaConfig,
  createMeshPacket,
  createMyNodeInfo,
  createNodeInfo,
  createQueueStatus,
  createUser,
  type Data,
  type DeviceMetadata,
  type FromRadio,
  type FromRadioPayload,
  type LogRecord,
  type LoRaConfig,
  type MeshPacket,
  type MyNodeInfo,
  type NodeInfo,
  type QueueStatus,
  type Routing,
  type ToRadio,
  type ToRadioPayload,
  type User,
} from '../../firmware-bridge/meshtastic/protobuf.ts';
import { Mesh, oracleEncode, PbConfig } from './meshtastic-oracle.ts';

export const u32 = fc.integer({ min: 0, max: 0xffffffff });
export const i32 = fc.integer({ min: -0x80000000, max: 0x7fffffff });
export const f32 = fc.float();
const str = fc.string({ unit: 'binary', maxLength: 24 });
/** Bytes rich in the stream-API start bytes, to stress framing (M2). */
export const hostileBytes = (maxLength: number) =>
  fc
    .array(fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constantFrom(0x94, 0xc3, 0x00, 0x01, 0x02)), { maxLength })
    .map((a) => Uint8Array.from(a));
const bytes = (maxLength = 32) => fc.oneof(fc.uint8Array({ maxLength }), hostileBytes(maxLength));
/** Sometimes the default, so the proto3 "omit defaults" path is exercised too. */
const opt = <T>(a: fc.Arbitrary<T>, dflt: T) => fc.oneof(fc.constant(dflt), a);

export const dataArb: fc.Arbitrary<Data> = fc
  .record({
    portnum: opt(i32, 0),
    payload: bytes(233),
    wantResponse: fc.boolean(),
    dest: opt(u32, 0),
    source: opt(u32, 0),
    requestId: opt(u32, 0),
    replyId: opt(u32, 0),
    emoji: opt(u32, 0),
    bitfield: fc.option(u32, { nil: undefined }),
  })
  .map(({ bitfield, ...d }) => createData(bitfield === undefined ? d : { ...d, bitfield }));

export const meshPacketArb: fc.Arbitrary<MeshPacket> = fc
  .record({
    from: u32,
    to: u32,
    channel: opt(u32, 0),
    payload: fc.oneof(
      dataArb.map((data) => ({ kind: 'decoded' as const, data })),
      bytes(64).map((b) => ({ kind: 'encrypted' as const, bytes: b })),
      fc.constant({ kind: 'none' as const }),
    ),
    id: u32,
    rxTime: opt(u32, 0),
    rxSnr: opt(f32, 0),
    hopLimit: opt(u32, 0),
    wantAck: fc.boolean(),
    priority: opt(i32, 0),
    rxRssi: opt(i32, 0),
    viaMqtt: fc.boolean(),
    hopStart: opt(u32, 0),
    publicKey: bytes(32),
    pkiEncrypted: fc.boolean(),
    nextHop: opt(u32, 0),
    relayNode: opt(u32, 0),
    txAfter: opt(u32, 0),
    transportMechanism: opt(i32, 0),
  })
  .map((p) => createMeshPacket(p));

export const routingArb: fc.Arbitrary<Routing> = fc.oneof(
  i32.map((errorReason) => ({ kind: 'error' as const, errorReason })),
  fc
    .tuple(fc.constantFrom('routeRequest' as const, 'routeReply' as const), fc.array(u32, { maxLength: 4 }))
    .map(([kind, route]) => ({ kind, raw: oracleEncode(Mesh.RouteDiscoverySchema, { route }) })),
  fc.constant({ kind: 'none' as const }),
);

export const queueStatusArb: fc.Arbitrary<QueueStatus> = fc
  .record({ res: opt(i32, 0), free: opt(u32, 0), maxlen: opt(u32, 0), meshPacketId: opt(u32, 0) })
  .map(createQueueStatus);

export const myNodeInfoArb: fc.Arbitrary<MyNodeInfo> = fc
  .record({
    myNodeNum: u32,
    rebootCount: opt(u32, 0),
    minAppVersion: opt(u32, 0),
    deviceId: bytes(16),
    pioEnv: str,
    firmwareEdition: opt(i32, 0),
    nodedbCount: opt(u32, 0),
  })
  .map(createMyNodeInfo);

export const userArb: fc.Arbitrary<User> = fc
  .record({
    id: str,
    longName: str,
    shortName: str,
    hwModel: opt(i32, 0),
    isLicensed: fc.boolean(),
    role: opt(i32, 0),
    publicKey: bytes(32),
    isUnmessagable: fc.option(fc.boolean(), { nil: undefined }),
  })
  .map(({ isUnmessagable, ...u }) => createUser(isUnmessagable === undefined ? u : { ...u, isUnmessagable }));

export const nodeInfoArb: fc.Arbitrary<NodeInfo> = fc
  .record({
    num: u32,
    user: fc.option(userArb, { nil: undefined }),
    snr: opt(f32, 0),
    lastHeard: opt(u32, 0),
    channel: opt(u32, 0),
    viaMqtt: fc.boolean(),
    hopsAway: fc.option(u32, { nil: undefined }),
    isFavorite: fc.boolean(),
    isIgnored: fc.boolean(),
    isKeyManuallyVerified: fc.boolean(),
    isMuted: fc.boolean(),
  })
  .map(({ user, hopsAway, ...n }) =>
    createNodeInfo({ ...n, ...(user ? { user } : {}), ...(hopsAway === undefined ? {} : { hopsAway }) }),
  );

export const metadataArb: fc.Arbitrary<DeviceMetadata> = fc
  .record({
    firmwareVersion: str,
    deviceStateVersion: opt(u32, 0),
    canShutdown: fc.boolean(),
    hasWifi: fc.boolean(),
    hasBluetooth: fc.boolean(),
    hasEthernet: fc.boolean(),
    role: opt(i32, 0),
    positionFlags: opt(u32, 0),
    hwModel: opt(i32, 0),
    hasRemoteHardware: fc.boolean(),
    hasPKC: fc.boolean(),
    excludedModules: opt(u32, 0),
  })
  .map(createDeviceMetadata);

const channelSettingsArb: fc.Arbitrary<ChannelSettings> = fc
  .record({
    psk: bytes(32),
    name: str,
    id: opt(u32, 0),
    uplinkEnabled: fc.boolean(),
    downlinkEnabled: fc.boolean(),
    moduleSettings: fc.option(
      fc.record({ positionPrecision: opt(u32, 0), isMuted: fc.boolean() }).map((m) => ({ ...m })),
      {
        nil: undefined,
      },
    ),
  })
  .map(({ moduleSettings, ...s }) => createChannelSettings(moduleSettings ? { ...s, moduleSettings } : s));

export const channelArb: fc.Arbitrary<Channel> = fc
  .record({ index: opt(i32, 0), settings: fc.option(channelSettingsArb, { nil: undefined }), role: opt(i32, 0) })
  .map(({ settings, ...c }) => createChannel(settings ? { ...c, settings } : c));

export const loraArb: fc.Arbitrary<LoRaConfig> = fc
  .record({
    usePreset: fc.boolean(),
    modemPreset: opt(i32, 0),
    bandwidth: opt(u32, 0),
    spreadFactor: opt(u32, 0),
    codingRate: opt(u32, 0),
    frequencyOffset: opt(f32, 0),
    region: opt(i32, 0),
    hopLimit: opt(u32, 0),
    txEnabled: fc.boolean(),
    txPower: opt(i32, 0),
    channelNum: opt(u32, 0),
    overrideDutyCycle: fc.boolean(),
    sx126xRxBoostedGain: fc.boolean(),
    overrideFrequency: opt(f32, 0),
    paFanDisabled: fc.boolean(),
    ignoreIncoming: fc.array(u32, { maxLength: 5 }),
    ignoreMqtt: fc.boolean(),
    configOkToMqtt: fc.boolean(),
  })
  .map(createLoRaConfig);

const otherConfigArb: fc.Arbitrary<Config> = fc.oneof(
  fc.integer({ min: 0, max: 12 }).map((role) => ({
    kind: 'other' as const,
    field: 1,
    raw: oracleEncode(PbConfig.Config_DeviceConfigSchema, { role }),
  })),
  fc.boolean().map((serialEnabled) => ({
    kind: 'other' as const,
    field: 8,
    raw: oracleEncode(PbConfig.Config_SecurityConfigSchema, { serialEnabled }),
  })),
  fc.constantFrom(2, 3, 4, 5, 7, 9).map((field) => ({ kind: 'other' as const, field, raw: new Uint8Array(0) })),
);

export const configArb: fc.Arbitrary<Config> = fc.oneof(
  loraArb.map((lora) => ({ kind: 'lora' as const, lora })),
  otherConfigArb,
  fc.constant({ kind: 'none' as const }),
);

export const logRecordArb: fc.Arbitrary<LogRecord> = fc
  .record({ message: str, time: opt(u32, 0), source: str, level: opt(i32, 0) })
  .map(createLogRecord);

export const clientNotificationArb: fc.Arbitrary<ClientNotification> = fc
  .record({ replyId: fc.option(u32, { nil: undefined }), time: opt(u32, 0), level: opt(i32, 0), message: str })
  .map(({ replyId, ...c }) => createClientNotification(replyId === undefined ? c : { ...c, replyId }));

const skippedFromRadioArb: fc.Arbitrary<FromRadioPayload> = fc.oneof(
  fc.boolean().map((enabled) => ({
    kind: 'skipped' as const,
    field: 9 as const,
    raw: oracleEncode((Mesh.FromRadioSchema as DescMessage).fields.find((f) => f.number === 9)!.message!, {
      payloadVariant: { case: 'mqtt', value: { enabled } },
    }),
  })),
  fc.tuple(str, u32).map(([fileName, sizeBytes]) => ({
    kind: 'skipped' as const,
    field: 15 as const,
    raw: oracleEncode(Mesh.FileInfoSchema, { fileName, sizeBytes }),
  })),
  fc.constantFrom(12 as const, 14 as const, 17 as const).map((field) => ({
    kind: 'skipped' as const,
    field,
    raw: new Uint8Array(0),
  })),
);

export const fromRadioPayloadArb: fc.Arbitrary<FromRadioPayload> = fc.oneof(
  meshPacketArb.map((packet) => ({ kind: 'packet' as const, packet })),
  myNodeInfoArb.map((myInfo) => ({ kind: 'myInfo' as const, myInfo })),
  nodeInfoArb.map((nodeInfo) => ({ kind: 'nodeInfo' as const, nodeInfo })),
  configArb.map((config) => ({ kind: 'config' as const, config })),
  logRecordArb.map((logRecord) => ({ kind: 'logRecord' as const, logRecord })),
  u32.map((configCompleteId) => ({ kind: 'configCompleteId' as const, configCompleteId })),
  fc.boolean().map((rebooted) => ({ kind: 'rebooted' as const, rebooted })),
  channelArb.map((channel) => ({ kind: 'channel' as const, channel })),
  queueStatusArb.map((queueStatus) => ({ kind: 'queueStatus' as const, queueStatus })),
  metadataArb.map((metadata) => ({ kind: 'metadata' as const, metadata })),
  clientNotificationArb.map((clientNotification) => ({ kind: 'clientNotification' as const, clientNotification })),
  skippedFromRadioArb,
  fc.constant({ kind: 'none' as const }),
);

export const fromRadioArb: fc.Arbitrary<FromRadio> = fc
  .record({ id: opt(u32, 0), payload: fromRadioPayloadArb })
  .map((m) => ({ id: m.id, payload: m.payload }));

export const toRadioPayloadArb: fc.Arbitrary<ToRadioPayload> = fc.oneof(
  meshPacketArb.map((packet) => ({ kind: 'packet' as const, packet })),
  u32.map((wantConfigId) => ({ kind: 'wantConfigId' as const, wantConfigId })),
  fc.boolean().map((disconnect) => ({ kind: 'disconnect' as const, disconnect })),
  opt(u32, 0).map((nonce) => ({ kind: 'heartbeat' as const, heartbeat: { nonce } })),
  fc.constantFrom(5 as const, 6 as const).map((field) => ({ kind: 'skipped' as const, field, raw: new Uint8Array(0) })),
  fc.constant({ kind: 'none' as const }),
);

export const toRadioArb: fc.Arbitrary<ToRadio> = toRadioPayloadArb.map((payload) => ({ payload }));
