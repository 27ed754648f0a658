// The subset of Meshtastic's protobufs the stream API needs, hand-written from the published field
// numbers [PB meshtastic/mesh.proto, config.proto, channel.proto]. Decoders skip unknown fields by the
// wire rules and throw only MeshtasticError; encoders write fields in field-number order, omitting proto3
// defaults except for oneof members. A repeated embedded message keeps the last occurrence (nanopb, the
// firmware's encoder, never repeats one).

import { MeshtasticError } from './errors.ts';
import { expectWireType, WIRE_I32, WIRE_LEN, WIRE_VARINT, WireReader, WireWriter } from './protobuf-wire.ts';

// ---------------------------------------------------------------------------------------------------
// Constants [PB mesh.proto, portnums.proto, mesh.options]

export const BROADCAST_NUM = 0xffffffff;
/** Largest Data.payload (DATA_PAYLOAD_LEN, mesh.options max_size). */
export const DATA_PAYLOAD_MAX_BYTES = 233;
/** Largest encoded Data the router accepts (255-byte LoRa frame − 16-byte header); above → TOO_LARGE. */
export const DATA_ENCODED_MAX_BYTES = 239;
/** ToRadio.want_config_id values with special meaning [MT-FW PhoneAPI.h]. */
export const NONCE_ONLY_CONFIG = 69420;
export const NONCE_ONLY_NODES = 69421;

export const PortNum = {
  UNKNOWN_APP: 0,
  TEXT_MESSAGE_APP: 1,
  NODEINFO_APP: 4,
  ROUTING_APP: 5,
  ADMIN_APP: 6,
  PRIVATE_APP: 256,
  MAX: 511,
} as const;

/** Routing.Error values and their names [PB mesh.proto Routing.Error]. */
export const ROUTING_ERROR_NAMES: Readonly<Record<number, string>> = Object.freeze({
  0: 'NONE',
  1: 'NO_ROUTE',
  2: 'GOT_NAK',
  3: 'TIMEOUT',
  4: 'NO_INTERFACE',
  5: 'MAX_RETRANSMIT',
  6: 'NO_CHANNEL',
  7: 'TOO_LARGE',
  8: 'NO_RESPONSE',
  9: 'DUTY_CYCLE_LIMIT',
  32: 'BAD_REQUEST',
  33: 'NOT_AUTHORIZED',
  34: 'PKI_FAILED',
  35: 'PKI_UNKNOWN_PUBKEY',
  36: 'ADMIN_BAD_SESSION_KEY',
  37: 'ADMIN_PUBLIC_KEY_UNAUTHORIZED',
  38: 'RATE_LIMIT_EXCEEDED',
  39: 'PKI_SEND_FAIL_PUBLIC_KEY',
});

export const RoutingError = {
  NONE: 0,
  NO_ROUTE: 1,
  MAX_RETRANSMIT: 5,
  TOO_LARGE: 7,
  RATE_LIMIT_EXCEEDED: 38,
} as const;

/** The name of a Routing.Error value, or `ROUTING_ERROR_<n>` for one this build does not know. */
export function routingErrorName(value: number): string {
  return ROUTING_ERROR_NAMES[value] ?? `ROUTING_ERROR_${value}`;
}

export const Priority = { UNSET: 0, DEFAULT: 64, RELIABLE: 70, ACK: 120 } as const;

// ---------------------------------------------------------------------------------------------------
// Message shapes (camelCase of the .proto names; numbers are uint32 unless noted)

export interface Data {
  readonly portnum: number;
  readonly payload: Uint8Array;
  readonly wantResponse: boolean;
  readonly dest: number;
  readonly source: number;
  readonly requestId: number;
  readonly replyId: number;
  readonly emoji: number;
  readonly bitfield?: number;
}

export type MeshPacketPayload =
  | { readonly kind: 'decoded'; readonly data: Data }
  | { readonly kind: 'encrypted'; readonly bytes: Uint8Array }
  | { readonly kind: 'none' };

export interface MeshPacket {
  readonly from: number;
  readonly to: number;
  /** Channel index 0..7 when sent by a client; the channel hash on received encrypted packets. */
  readonly channel: number;
  readonly payload: MeshPacketPayload;
  readonly id: number;
  readonly rxTime: number;
  /** float32 */
  readonly rxSnr: number;
  readonly hopLimit: number;
  readonly wantAck: boolean;
  readonly priority: number;
  /** int32 */
  readonly rxRssi: number;
  readonly viaMqtt: boolean;
  readonly hopStart: number;
  readonly publicKey: Uint8Array;
  readonly pkiEncrypted: boolean;
  readonly nextHop: number;
  readonly relayNode: number;
  readonly txAfter: number;
  readonly transportMechanism: number;
}

export type Routing =
  | { readonly kind: 'error'; readonly errorReason: number }
  | { readonly kind: 'routeRequest' | 'routeReply'; readonly raw: Uint8Array }
  | { readonly kind: 'none' };

export interface QueueStatus {
  /** int32: 0 = accepted, else a firmware errno (32 ERRNO_UNKNOWN when the TX queue was full). */
  readonly res: number;
  readonly free: number;
  readonly maxlen: number;
  readonly meshPacketId: number;
}

export interface MyNodeInfo {
  readonly myNodeNum: number;
  readonly rebootCount: number;
  readonly minAppVersion: number;
  readonly deviceId: Uint8Array;
  readonly pioEnv: string;
  readonly firmwareEdition: number;
  readonly nodedbCount: number;
}

export interface User {
  /** "!%08x" of the node number. */
  readonly id: string;
  readonly longName: string;
  readonly shortName: string;
  readonly hwModel: number;
  readonly isLicensed: boolean;
  readonly role: number;
  readonly publicKey: Uint8Array;
  readonly isUnmessagable?: boolean;
}

export interface NodeInfo {
  readonly num: number;
  readonly user?: User;
  readonly snr: number;
  readonly lastHeard: number;
  readonly channel: number;
  readonly viaMqtt: boolean;
  readonly hopsAway?: number;
  readonly isFavorite: boolean;
  readonly isIgnored: boolean;
  readonly isKeyManuallyVerified: boolean;
  readonly isMuted: boolean;
}

export interface DeviceMetadata {
  readonly firmwareVersion: string;
  readonly deviceStateVersion: number;
  readonly canShutdown: boolean;
  readonly hasWifi: boolean;
  readonly hasBluetooth: boolean;
  readonly hasEthernet: boolean;
  readonly role: number;
  readonly positionFlags: number;
  readonly hwModel: number;
  readonly hasRemoteHardware: boolean;
  readonly hasPKC: boolean;
  readonly excludedModules: number;
}

export interface ModuleSettings {
  readonly positionPrecision: number;
  readonly isMuted: boolean;
}

export interface ChannelSettings {
  readonly psk: Uint8Array;
  readonly name: string;
  /** fixed32 */
  readonly id: number;
  readonly uplinkEnabled: boolean;
  readonly downlinkEnabled: boolean;
  readonly moduleSettings?: ModuleSettings;
}

export const ChannelRole = { DISABLED: 0, PRIMARY: 1, SECONDARY: 2 } as const;

export interface Channel {
  /** int32, 0..7 */
  readonly index: number;
  readonly settings?: ChannelSettings;
  readonly role: number;
}

export interface LoRaConfig {
  readonly usePreset: boolean;
  readonly modemPreset: number;
  /** kHz, or a code (31 = 31.25, 62 = 62.5, 200 = 203.125, 400 = 406.25, 800 = 812.5, 1600 = 1625). */
  readonly bandwidth: number;
  readonly spreadFactor: number;
  /** Denominator 5..8. */
  readonly codingRate: number;
  /** float32, MHz */
  readonly frequencyOffset: number;
  readonly region: number;
  readonly hopLimit: number;
  readonly txEnabled: boolean;
  /** int32 dBm; 0 = the region's limit. */
  readonly txPower: number;
  /** 1-based frequency slot; 0 = derived from the primary channel name. */
  readonly channelNum: number;
  readonly overrideDutyCycle: boolean;
  readonly sx126xRxBoostedGain: boolean;
  /** float32, MHz; 0 = none. */
  readonly overrideFrequency: number;
  readonly paFanDisabled: boolean;
  readonly ignoreIncoming: readonly number[];
  readonly ignoreMqtt: boolean;
  readonly configOkToMqtt: boolean;
}

/** Config.payload_variant field numbers [PB config.proto]. */
export const CONFIG_SECTION_FIELDS = {
  device: 1,
  position: 2,
  power: 3,
  network: 4,
  display: 5,
  lora: 6,
  bluetooth: 7,
  security: 8,
  sessionkey: 9,
  deviceUi: 10,
} as const;

export type Config =
  | { readonly kind: 'lora'; readonly lora: LoRaConfig }
  /** Any other section, kept as its encoded bytes. */
  | { readonly kind: 'other'; readonly field: number; readonly raw: Uint8Array }
  | { readonly kind: 'none' };

export const LogLevel = { UNSET: 0, CRITICAL: 50, ERROR: 40, WARNING: 30, INFO: 20, DEBUG: 10, TRACE: 5 } as const;

export interface LogRecord {
  readonly message: string;
  /** fixed32 */
  readonly time: number;
  readonly source: string;
  readonly level: number;
}

export interface ClientNotification {
  readonly replyId?: number;
  /** fixed32 */
  readonly time: number;
  readonly level: number;
  readonly message: string;
}

export interface Heartbeat {
  readonly nonce: number;
}

/** FromRadio variants this subset does not interpret; kept as raw bytes [PB mesh.proto FromRadio]. */
export const FROM_RADIO_SKIPPED = {
  9: 'moduleConfig',
  12: 'xmodemPacket',
  14: 'mqttClientProxyMessage',
  15: 'fileInfo',
  17: 'deviceuiConfig',
  18: 'lockdownStatus',
  19: 'regionPresets',
} as const satisfies Record<number, string>;

export type FromRadioPayload =
  | { readonly kind: 'packet'; readonly packet: MeshPacket }
  | { readonly kind: 'myInfo'; readonly myInfo: MyNodeInfo }
  | { readonly kind: 'nodeInfo'; readonly nodeInfo: NodeInfo }
  | { readonly kind: 'config'; readonly config: Config }
  | { readonly kind: 'logRecord'; readonly logRecord: LogRecord }
  | { readonly kind: 'configCompleteId'; readonly configCompleteId: number }
  | { readonly kind: 'rebooted'; readonly rebooted: boolean }
  | { readonly kind: 'channel'; readonly channel: Channel }
  | { readonly kind: 'queueStatus'; readonly queueStatus: QueueStatus }
  | { readonly kind: 'metadata'; readonly metadata: DeviceMetadata }
  | { readonly kind: 'clientNotification'; readonly clientNotification: ClientNotification }
  | { readonly kind: 'skipped'; readonly field: keyof typeof FROM_RADIO_SKIPPED; readonly raw: Uint8Array }
  | { readonly kind: 'none' };

export interface FromRadio {
  readonly id: number;
  readonly payload: FromRadioPayload;
}

export const TO_RADIO_SKIPPED = { 5: 'xmodemPacket', 6: 'mqttClientProxyMessage' } as const satisfies Record<
  number,
  string
>;

export type ToRadioPayload =
  | { readonly kind: 'packet'; readonly packet: MeshPacket }
  | { readonly kind: 'wantConfigId'; readonly wantConfigId: number }
  | { readonly kind: 'disconnect'; readonly disconnect: boolean }
  | { readonly kind: 'heartbeat'; readonly heartbeat: Heartbeat }
  | { readonly kind: 'skipped'; readonly field: keyof typeof TO_RADIO_SKIPPED; readonly raw: Uint8Array }
  | { readonly kind: 'none' };

export interface ToRadio {
  readonly payload: ToRadioPayload;
}

// ---------------------------------------------------------------------------------------------------
// Defaults, so callers name only the fields they set

const EMPTY = new Uint8Array(0);

export function createData(d: Partial<Data> = {}): Data {
  return {
    portnum: 0,
    payload: EMPTY,
    wantResponse: false,
    dest: 0,
    source: 0,
    requestId: 0,
    replyId: 0,
    emoji: 0,
    ...d,
  };
}

export function createMeshPacket(p: Partial<MeshPacket> = {}): MeshPacket {
  return {
    from: 0,
    to: 0,
    channel: 0,
    payload: { kind: 'none' },
    id: 0,
    rxTime: 0,
    rxSnr: 0,
    hopLimit: 0,
    wantAck: false,
    priority: 0,
    rxRssi: 0,
    viaMqtt: false,
    hopStart: 0,
    publicKey: EMPTY,
    pkiEncrypted: false,
    nextHop: 0,
    relayNode: 0,
    txAfter: 0,
    transportMechanism: 0,
    ...p,
  };
}

export function createQueueStatus(q: Partial<QueueStatus> = {}): QueueStatus {
  return { res: 0, free: 0, maxlen: 0, meshPacketId: 0, ...q };
}

export function createMyNodeInfo(m: Partial<MyNodeInfo> = {}): MyNodeInfo {
  return {
    myNodeNum: 0,
    rebootCount: 0,
    minAppVersion: 0,
    deviceId: EMPTY,
    pioEnv: '',
    firmwareEdition: 0,
    nodedbCount: 0,
    ...m,
  };
}

export function createUser(u: Partial<User> = {}): User {
  return {
    id: '',
    longName: '',
    shortName: '',
    hwModel: 0,
    isLicensed: false,
    role: 0,
    publicKey: EMPTY,
    ...u,
  };
}

export function createNodeInfo(n: Partial<NodeInfo> = {}): NodeInfo {
  return {
    num: 0,
    snr: 0,
    lastHeard: 0,
    channel: 0,
    viaMqtt: false,
    isFavorite: false,
    isIgnored: false,
    isKeyManuallyVerified: false,
    isMuted: false,
    ...n,
  };
}

export function createDeviceMetadata(m: Partial<DeviceMetadata> = {}): DeviceMetadata {
  return {
    firmwareVersion: '',
    deviceStateVersion: 0,
    canShutdown: false,
    hasWifi: false,
    hasBluetooth: false,
    hasEthernet: false,
    role: 0,
    positionFlags: 0,
    hwModel: 0,
    hasRemoteHardware: false,
    hasPKC: false,
    excludedModules: 0,
    ...m,
  };
}

export function createChannelSettings(s: Partial<ChannelSettings> = {}): ChannelSettings {
  return { psk: EMPTY, name: '', id: 0, uplinkEnabled: false, downlinkEnabled: false, ...s };
}

export function createChannel(c: Partial<Channel> = {}): Channel {
  return { index: 0, role: 0, ...c };
}

export function createLoRaConfig(l: Partial<LoRaConfig> = {}): LoRaConfig {
  return {
    usePreset: false,
    modemPreset: 0,
    bandwidth: 0,
    spreadFactor: 0,
    codingRate: 0,
    frequencyOffset: 0,
    region: 0,
    hopLimit: 0,
    txEnabled: false,
    txPower: 0,
    channelNum: 0,
    overrideDutyCycle: false,
    sx126xRxBoostedGain: false,
    overrideFrequency: 0,
    paFanDisabled: false,
    ignoreIncoming: [],
    ignoreMqtt: false,
    configOkToMqtt: false,
    ...l,
  };
}

export function createLogRecord(l: Partial<LogRecord> = {}): LogRecord {
  return { message: '', time: 0, source: '', level: 0, ...l };
}

export function createClientNotification(c: Partial<ClientNotification> = {}): ClientNotification {
  return { time: 0, level: 0, message: '', ...c };
}

// ---------------------------------------------------------------------------------------------------
// Readers (one function per message; each loops over tags and skips what it does not know)

type Fields = Record<string, unknown>;

function readData(r: WireReader): Data {
  const d: Fields = { ...createData() };
  while (!r.done) {
    const { field, wireType: w } = r.tag();
    switch (field) {
      case 1:
        expectWireType(w, WIRE_VARINT, field, 'Data');
        d.portnum = r.int32();
        break;
      case 2:
        expectWireType(w, WIRE_LEN, field, 'Data');
        d.payload = r.bytes();
        break;
      case 3:
        expectWireType(w, WIRE_VARINT, field, 'Data');
        d.wantResponse = r.bool();
        break;
      case 4:
      case 5:
      case 6:
      case 7:
      case 8: {
        expectWireType(w, WIRE_I32, field, 'Data');
        const key = (['dest', 'source', 'requestId', 'replyId', 'emoji'] as const)[field - 4]!;
        d[key] = r.fixed32();
        break;
      }
      case 9:
        expectWireType(w, WIRE_VARINT, field, 'Data');
        d.bitfield = r.uint32();
        break;
      default:
        r.skip(w, field);
    }
  }
  return d as unknown as Data;
}

function readMeshPacket(r: WireReader): MeshPacket {
  const p: Fields = { ...createMeshPacket() };
  while (!r.done) {
    const { field, wireType: w } = r.tag();
    switch (field) {
      case 1:
      case 2:
      case 6:
      case 7: {
        expectWireType(w, WIRE_I32, field, 'MeshPacket');
        const key = ({ 1: 'from', 2: 'to', 6: 'id', 7: 'rxTime' } as const)[field];
        p[key] = r.fixed32();
        break;
      }
      case 3:
        expectWireType(w, WIRE_VARINT, field, 'MeshPacket');
        p.channel = r.uint32();
        break;
      case 4:
        expectWireType(w, WIRE_LEN, field, 'MeshPacket');
        p.payload = { kind: 'decoded', data: readData(r.message()) };
        break;
      case 5:
        expectWireType(w, WIRE_LEN, field, 'MeshPacket');
        p.payload = { kind: 'encrypted', bytes: r.bytes() };
        break;
      case 8:
        expectWireType(w, WIRE_I32, field, 'MeshPacket');
        p.rxSnr = r.float();
        break;
      case 11:
      case 12:
      case 21: {
        expectWireType(w, WIRE_VARINT, field, 'MeshPacket');
        const key = ({ 11: 'priority', 12: 'rxRssi', 21: 'transportMechanism' } as const)[field];
        p[key] = r.int32();
        break;
      }
      case 9:
      case 15:
      case 18:
      case 19:
      case 20: {
        expectWireType(w, WIRE_VARINT, field, 'MeshPacket');
        const key = ({ 9: 'hopLimit', 15: 'hopStart', 18: 'nextHop', 19: 'relayNode', 20: 'txAfter' } as const)[field];
        p[key] = r.uint32();
        break;
      }
      case 10:
      case 14:
      case 17: {
        expectWireType(w, WIRE_VARINT, field, 'MeshPacket');
        const key = ({ 10: 'wantAck', 14: 'viaMqtt', 17: 'pkiEncrypted' } as const)[field];
        p[key] = r.bool();
        break;
      }
      case 16:
        expectWireType(w, WIRE_LEN, field, 'MeshPacket');
        p.publicKey = r.bytes();
        break;
      default:
        r.skip(w, field);
    }
  }
  return p as unknown as MeshPacket;
}

function readRouting(r: WireReader): Routing {
  let out: Routing = { kind: 'none' };
  while (!r.done) {
    const { field, wireType: w } = r.tag();
    if (field === 1 || field === 2) {
      expectWireType(w, WIRE_LEN, field, 'Routing');
      out = { kind: field === 1 ? 'routeRequest' : 'routeReply', raw: r.bytes() };
    } else if (field === 3) {
      expectWireType(w, WIRE_VARINT, field, 'Routing');
      out = { kind: 'error', errorReason: r.int32() };
    } else r.skip(w, field);
  }
  return out;
}

function readQueueStatus(r: WireReader): QueueStatus {
  const q: Fields = { ...createQueueStatus() };
  while (!r.done) {
    const { field, wireType: w } = r.tag();
    if (field >= 1 && field <= 4) {
      expectWireType(w, WIRE_VARINT, field, 'QueueStatus');
      if (field === 1) q.res = r.int32();
      else q[(['free', 'maxlen', 'meshPacketId'] as const)[field - 2]!] = r.uint32();
    } else r.skip(w, field);
  }
  return q as unknown as QueueStatus;
}

function readMyNodeInfo(r: WireReader): MyNodeInfo {
  const m: Fields = { ...createMyNodeInfo() };
  while (!r.done) {
    const { field, wireType: w } = r.tag();
    switch (field) {
      case 1:
      case 8:
      case 11:
      case 15: {
        expectWireType(w, WIRE_VARINT, field, 'MyNodeInfo');
        const key = ({ 1: 'myNodeNum', 8: 'rebootCount', 11: 'minAppVersion', 15: 'nodedbCount' } as const)[field];
        m[key] = r.uint32();
        break;
      }
      case 12:
        expectWireType(w, WIRE_LEN, field, 'MyNodeInfo');
        m.deviceId = r.bytes();
        break;
      case 13:
        expectWireType(w, WIRE_LEN, field, 'MyNodeInfo');
        m.pioEnv = r.string();
        break;
      case 14:
        expectWireType(w, WIRE_VARINT, field, 'MyNodeInfo');
        m.firmwareEdition = r.int32();
        break;
      default:
        r.skip(w, field);
    }
  }
  return m as unknown as MyNodeInfo;
}

function readUser(r: WireReader): User {
  const u: Fields = { ...createUser() };
  while (!r.done) {
    const { field, wireType: w } = r.tag();
    switch (field) {
      case 1:
      case 2:
      case 3: {
        expectWireType(w, WIRE_LEN, field, 'User');
        u[(['id', 'longName', 'shortName'] as const)[field - 1]!] = r.string();
        break;
      }
      case 5:
      case 7:
        expectWireType(w, WIRE_VARINT, field, 'User');
        u[field === 5 ? 'hwModel' : 'role'] = r.int32();
        break;
      case 6:
      case 9:
        expectWireType(w, WIRE_VARINT, field, 'User');
        u[field === 6 ? 'isLicensed' : 'isUnmessagable'] = r.bool();
        break;
      case 8:
        expectWireType(w, WIRE_LEN, field, 'User');
        u.publicKey = r.bytes();
        break;
      default:
        r.skip(w, field);
    }
  }
  return u as unknown as User;
}

function readNodeInfo(r: WireReader): NodeInfo {
  const n: Fields = { ...createNodeInfo() };
  while (!r.done) {
    const { field, wireType: w } = r.tag();
    switch (field) {
      case 1:
      case 7:
      case 9: {
        expectWireType(w, WIRE_VARINT, field, 'NodeInfo');
        n[({ 1: 'num', 7: 'channel', 9: 'hopsAway' } as const)[field]] = r.uint32();
        break;
      }
      case 2:
        expectWireType(w, WIRE_LEN, field, 'NodeInfo');
        n.user = readUser(r.message());
        break;
      case 4:
        expectWireType(w, WIRE_I32, field, 'NodeInfo');
        n.snr = r.float();
        break;
      case 5:
        expectWireType(w, WIRE_I32, field, 'NodeInfo');
        n.lastHeard = r.fixed32();
        break;
      case 8:
      case 10:
      case 11:
      case 12:
      case 13: {
        expectWireType(w, WIRE_VARINT, field, 'NodeInfo');
        const key = (
          { 8: 'viaMqtt', 10: 'isFavorite', 11: 'isIgnored', 12: 'isKeyManuallyVerified', 13: 'isMuted' } as const
        )[field];
        n[key] = r.bool();
        break;
      }
      default:
        r.skip(w, field);
    }
  }
  return n as unknown as NodeInfo;
}

const METADATA_VARINTS = {
  2: ['deviceStateVersion', 'uint32'],
  3: ['canShutdown', 'bool'],
  4: ['hasWifi', 'bool'],
  5: ['hasBluetooth', 'bool'],
  6: ['hasEthernet', 'bool'],
  7: ['role', 'int32'],
  8: ['positionFlags', 'uint32'],
  9: ['hwModel', 'int32'],
  10: ['hasRemoteHardware', 'bool'],
  11: ['hasPKC', 'bool'],
  12: ['excludedModules', 'uint32'],
} as const;

function readDeviceMetadata(r: WireReader): DeviceMetadata {
  const m: Fields = { ...createDeviceMetadata() };
  while (!r.done) {
    const { field, wireType: w } = r.tag();
    if (field === 1) {
      expectWireType(w, WIRE_LEN, field, 'DeviceMetadata');
      m.firmwareVersion = r.string();
    } else if (field in METADATA_VARINTS) {
      expectWireType(w, WIRE_VARINT, field, 'DeviceMetadata');
      const [key, type] = METADATA_VARINTS[field as keyof typeof METADATA_VARINTS];
      m[key] = type === 'bool' ? r.bool() : type === 'int32' ? r.int32() : r.uint32();
    } else r.skip(w, field);
  }
  return m as unknown as DeviceMetadata;
}

function readModuleSettings(r: WireReader): ModuleSettings {
  const s = { positionPrecision: 0, isMuted: false };
  while (!r.done) {
    const { field, wireType: w } = r.tag();
    if (field === 1) {
      expectWireType(w, WIRE_VARINT, field, 'ModuleSettings');
      s.positionPrecision = r.uint32();
    } else if (field === 2) {
      expectWireType(w, WIRE_VARINT, field, 'ModuleSettings');
      s.isMuted = r.bool();
    } else r.skip(w, field);
  }
  return s;
}

function readChannelSettings(r: WireReader): ChannelSettings {
  const s: Fields = { ...createChannelSettings() };
  while (!r.done) {
    const { field, wireType: w } = r.tag();
    switch (field) {
      case 2:
        expectWireType(w, WIRE_LEN, field, 'ChannelSettings');
        s.psk = r.bytes();
        break;
      case 3:
        expectWireType(w, WIRE_LEN, field, 'ChannelSettings');
        s.name = r.string();
        break;
      case 4:
        expectWireType(w, WIRE_I32, field, 'ChannelSettings');
        s.id = r.fixed32();
        break;
      case 5:
      case 6:
        expectWireType(w, WIRE_VARINT, field, 'ChannelSettings');
        s[field === 5 ? 'uplinkEnabled' : 'downlinkEnabled'] = r.bool();
        break;
      case 7:
        expectWireType(w, WIRE_LEN, field, 'ChannelSettings');
        s.moduleSettings = readModuleSettings(r.message());
        break;
      default:
        r.skip(w, field);
    }
  }
  return s as unknown as ChannelSettings;
}

function readChannel(r: WireReader): Channel {
  const c: Fields = { ...createChannel() };
  while (!r.done) {
    const { field, wireType: w } = r.tag();
    if (field === 1 || field === 3) {
      expectWireType(w, WIRE_VARINT, field, 'Channel');
      c[field === 1 ? 'index' : 'role'] = r.int32();
    } else if (field === 2) {
      expectWireType(w, WIRE_LEN, field, 'Channel');
      c.settings = readChannelSettings(r.message());
    } else r.skip(w, field);
  }
  return c as unknown as Channel;
}

const LORA_VARINTS = {
  1: ['usePreset', 'bool'],
  2: ['modemPreset', 'int32'],
  3: ['bandwidth', 'uint32'],
  4: ['spreadFactor', 'uint32'],
  5: ['codingRate', 'uint32'],
  7: ['region', 'int32'],
  8: ['hopLimit', 'uint32'],
  9: ['txEnabled', 'bool'],
  10: ['txPower', 'int32'],
  11: ['channelNum', 'uint32'],
  12: ['overrideDutyCycle', 'bool'],
  13: ['sx126xRxBoostedGain', 'bool'],
  15: ['paFanDisabled', 'bool'],
  104: ['ignoreMqtt', 'bool'],
  105: ['configOkToMqtt', 'bool'],
} as const;

function readLoRaConfig(r: WireReader): LoRaConfig {
  const l: Fields = { ...createLoRaConfig() };
  const ignore: number[] = [];
  while (!r.done) {
    const { field, wireType: w } = r.tag();
    if (field in LORA_VARINTS) {
      expectWireType(w, WIRE_VARINT, field, 'LoRaConfig');
      const [key, type] = LORA_VARINTS[field as keyof typeof LORA_VARINTS];
      l[key] = type === 'bool' ? r.bool() : type === 'int32' ? r.int32() : r.uint32();
    } else if (field === 6 || field === 14) {
      expectWireType(w, WIRE_I32, field, 'LoRaConfig');
      l[field === 6 ? 'frequencyOffset' : 'overrideFrequency'] = r.float();
    } else if (field === 103) {
      // Repeated scalars may arrive packed or one by one; parsers must take both.
      if (w === WIRE_LEN) {
        const packed = r.message();
        while (!packed.done) ignore.push(packed.uint32());
      } else {
        expectWireType(w, WIRE_VARINT, field, 'LoRaConfig');
        ignore.push(r.uint32());
      }
    } else r.skip(w, field);
  }
  l.ignoreIncoming = ignore;
  return l as unknown as LoRaConfig;
}

function readConfig(r: WireReader): Config {
  let out: Config = { kind: 'none' };
  while (!r.done) {
    const { field, wireType: w } = r.tag();
    if (field === CONFIG_SECTION_FIELDS.lora) {
      expectWireType(w, WIRE_LEN, field, 'Config');
      out = { kind: 'lora', lora: readLoRaConfig(r.message()) };
    } else if (field >= 1 && field <= 10) {
      expectWireType(w, WIRE_LEN, field, 'Config');
      out = { kind: 'other', field, raw: r.bytes() };
    } else r.skip(w, field);
  }
  return out;
}

function readLogRecord(r: WireReader): LogRecord {
  const l: Fields = { ...createLogRecord() };
  while (!r.done) {
    const { field, wireType: w } = r.tag();
    if (field === 1 || field === 3) {
      expectWireType(w, WIRE_LEN, field, 'LogRecord');
      l[field === 1 ? 'message' : 'source'] = r.string();
    } else if (field === 2) {
      expectWireType(w, WIRE_I32, field, 'LogRecord');
      l.time = r.fixed32();
    } else if (field === 4) {
      expectWireType(w, WIRE_VARINT, field, 'LogRecord');
      l.level = r.int32();
    } else r.skip(w, field);
  }
  return l as unknown as LogRecord;
}

function readClientNotification(r: WireReader): ClientNotification {
  const c: Fields = { ...createClientNotification() };
  while (!r.done) {
    const { field, wireType: w } = r.tag();
    if (field === 1) {
      expectWireType(w, WIRE_VARINT, field, 'ClientNotification');
      c.replyId = r.uint32();
    } else if (field === 2) {
      expectWireType(w, WIRE_I32, field, 'ClientNotification');
      c.time = r.fixed32();
    } else if (field === 3) {
      expectWireType(w, WIRE_VARINT, field, 'ClientNotification');
      c.level = r.int32();
    } else if (field === 4) {
      expectWireType(w, WIRE_LEN, field, 'ClientNotification');
      c.message = r.string();
    } else r.skip(w, field);
  }
  return c as unknown as ClientNotification;
}

function readHeartbeat(r: WireReader): Heartbeat {
  let nonce = 0;
  while (!r.done) {
    const { field, wireType: w } = r.tag();
    if (field === 1) {
      expectWireType(w, WIRE_VARINT, field, 'Heartbeat');
      nonce = r.uint32();
    } else r.skip(w, field);
  }
  return { nonce };
}

function readFromRadio(r: WireReader): FromRadio {
  let id = 0;
  let payload: FromRadioPayload = { kind: 'none' };
  while (!r.done) {
    const { field, wireType: w } = r.tag();
    const len = () => expectWireType(w, WIRE_LEN, field, 'FromRadio');
    const varint = () => expectWireType(w, WIRE_VARINT, field, 'FromRadio');
    switch (field) {
      case 1:
        varint();
        id = r.uint32();
        break;
      case 2:
        len();
        payload = { kind: 'packet', packet: readMeshPacket(r.message()) };
        break;
      case 3:
        len();
        payload = { kind: 'myInfo', myInfo: readMyNodeInfo(r.message()) };
        break;
      case 4:
        len();
        payload = { kind: 'nodeInfo', nodeInfo: readNodeInfo(r.message()) };
        break;
      case 5:
        len();
        payload = { kind: 'config', config: readConfig(r.message()) };
        break;
      case 6:
        len();
        payload = { kind: 'logRecord', logRecord: readLogRecord(r.message()) };
        break;
      case 7:
        varint();
        payload = { kind: 'configCompleteId', configCompleteId: r.uint32() };
        break;
      case 8:
        varint();
        payload = { kind: 'rebooted', rebooted: r.bool() };
        break;
      case 10:
        len();
        payload = { kind: 'channel', channel: readChannel(r.message()) };
        break;
      case 11:
        len();
        payload = { kind: 'queueStatus', queueStatus: readQueueStatus(r.message()) };
        break;
      case 13:
        len();
        payload = { kind: 'metadata', metadata: readDeviceMetadata(r.message()) };
        break;
      case 16:
        len();
        payload = { kind: 'clientNotification', clientNotification: readClientNotification(r.message()) };
        break;
      case 9:
      case 12:
      case 14:
      case 15:
      case 17:
      case 18:
      case 19:
        len();
        payload = { kind: 'skipped', field, raw: r.bytes() };
        break;
      default:
        r.skip(w, field);
    }
  }
  return { id, payload };
}

function readToRadio(r: WireReader): ToRadio {
  let payload: ToRadioPayload = { kind: 'none' };
  while (!r.done) {
    const { field, wireType: w } = r.tag();
    switch (field) {
      case 1:
        expectWireType(w, WIRE_LEN, field, 'ToRadio');
        payload = { kind: 'packet', packet: readMeshPacket(r.message()) };
        break;
      case 3:
        expectWireType(w, WIRE_VARINT, field, 'ToRadio');
        payload = { kind: 'wantConfigId', wantConfigId: r.uint32() };
        break;
      case 4:
        expectWireType(w, WIRE_VARINT, field, 'ToRadio');
        payload = { kind: 'disconnect', disconnect: r.bool() };
        break;
      case 7:
        expectWireType(w, WIRE_LEN, field, 'ToRadio');
        payload = { kind: 'heartbeat', heartbeat: readHeartbeat(r.message()) };
        break;
      case 5:
      case 6:
        expectWireType(w, WIRE_LEN, field, 'ToRadio');
        payload = { kind: 'skipped', field, raw: r.bytes() };
        break;
      default:
        r.skip(w, field);
    }
  }
  return { payload };
}

function decodeBounded<T>(bytes: Uint8Array, maxBytes: number, what: string, read: (r: WireReader) => T): T {
  if (bytes.length > maxBytes) {
    throw new MeshtasticError('MT_PB_TOO_LARGE', `${what} of ${bytes.length} bytes exceeds ${maxBytes}`, {
      details: { bytes: bytes.length, maxBytes },
    });
  }
  return read(new WireReader(bytes));
}

export interface DecodeOptions {
  /** Longest accepted input (default 512, the stream API's frame limit). */
  readonly maxBytes?: number;
}

const MAX_MESSAGE_BYTES = 512;

/** Decodes a FromRadio body. Throws MeshtasticError (MT_PB_*) on malformed or oversized input. */
export function decodeFromRadio(bytes: Uint8Array, options: DecodeOptions = {}): FromRadio {
  return decodeBounded(bytes, options.maxBytes ?? MAX_MESSAGE_BYTES, 'FromRadio', readFromRadio);
}

/** Decodes a ToRadio body. Throws MeshtasticError (MT_PB_*) on malformed or oversized input. */
export function decodeToRadio(bytes: Uint8Array, options: DecodeOptions = {}): ToRadio {
  return decodeBounded(bytes, options.maxBytes ?? MAX_MESSAGE_BYTES, 'ToRadio', readToRadio);
}

/** Decodes a Data message (a MeshPacket's decoded payload, or the on-air plaintext). Throws MeshtasticError. */
export function decodeData(bytes: Uint8Array, options: DecodeOptions = {}): Data {
  return decodeBounded(bytes, options.maxBytes ?? MAX_MESSAGE_BYTES, 'Data', readData);
}

/** Decodes a Routing message (the payload of a ROUTING_APP packet). Throws MeshtasticError. */
export function decodeRouting(bytes: Uint8Array, options: DecodeOptions = {}): Routing {
  return decodeBounded(bytes, options.maxBytes ?? MAX_MESSAGE_BYTES, 'Routing', readRouting);
}

/** Decodes a MeshPacket. Throws MeshtasticError. */
export function decodeMeshPacket(bytes: Uint8Array, options: DecodeOptions = {}): MeshPacket {
  return decodeBounded(bytes, options.maxBytes ?? MAX_MESSAGE_BYTES, 'MeshPacket', readMeshPacket);
}

/** True when `body` decodes as a FromRadio carrying a payload variant (the stream decoder's frame test). */
export function isPlausibleFromRadio(body: Uint8Array): boolean {
  try {
    return decodeFromRadio(body).payload.kind !== 'none';
  } catch {
    // Undecodable bodies are simply "not a frame" here; the framer counts them.
    return false;
  }
}

/** True when `body` decodes as a ToRadio carrying a payload variant. */
export function isPlausibleToRadio(body: Uint8Array): boolean {
  try {
    return decodeToRadio(body).payload.kind !== 'none';
  } catch {
    // As above: a rejection, counted by the framer.
    return false;
  }
}

// ---------------------------------------------------------------------------------------------------
// Writers

function writeData(d: Data): Uint8Array {
  const w = new WireWriter()
    .int32(1, d.portnum)
    .bytes(2, d.payload)
    .bool(3, d.wantResponse)
    .fixed32(4, d.dest)
    .fixed32(5, d.source)
    .fixed32(6, d.requestId)
    .fixed32(7, d.replyId)
    .fixed32(8, d.emoji);
  if (d.bitfield !== undefined) w.uint32(9, d.bitfield, true);
  return w.finish();
}

function writeMeshPacket(p: MeshPacket): Uint8Array {
  const w = new WireWriter().fixed32(1, p.from).fixed32(2, p.to).uint32(3, p.channel);
  if (p.payload.kind === 'decoded') w.message(4, writeData(p.payload.data));
  else if (p.payload.kind === 'encrypted') w.bytes(5, p.payload.bytes, true);
  return w
    .fixed32(6, p.id)
    .fixed32(7, p.rxTime)
    .float(8, p.rxSnr)
    .uint32(9, p.hopLimit)
    .bool(10, p.wantAck)
    .int32(11, p.priority)
    .int32(12, p.rxRssi)
    .bool(14, p.viaMqtt)
    .uint32(15, p.hopStart)
    .bytes(16, p.publicKey)
    .bool(17, p.pkiEncrypted)
    .uint32(18, p.nextHop)
    .uint32(19, p.relayNode)
    .uint32(20, p.txAfter)
    .int32(21, p.transportMechanism)
    .finish();
}

function writeRouting(r: Routing): Uint8Array {
  const w = new WireWriter();
  if (r.kind === 'error') w.int32(3, r.errorReason, true);
  else if (r.kind !== 'none') w.bytes(r.kind === 'routeRequest' ? 1 : 2, r.raw, true);
  return w.finish();
}

function writeQueueStatus(q: QueueStatus): Uint8Array {
  return new WireWriter().int32(1, q.res).uint32(2, q.free).uint32(3, q.maxlen).uint32(4, q.meshPacketId).finish();
}

function writeMyNodeInfo(m: MyNodeInfo): Uint8Array {
  return new WireWriter()
    .uint32(1, m.myNodeNum)
    .uint32(8, m.rebootCount)
    .uint32(11, m.minAppVersion)
    .bytes(12, m.deviceId)
    .string(13, m.pioEnv)
    .int32(14, m.firmwareEdition)
    .uint32(15, m.nodedbCount)
    .finish();
}

function writeUser(u: User): Uint8Array {
  const w = new WireWriter()
    .string(1, u.id)
    .string(2, u.longName)
    .string(3, u.shortName)
    .int32(5, u.hwModel)
    .bool(6, u.isLicensed)
    .int32(7, u.role)
    .bytes(8, u.publicKey);
  if (u.isUnmessagable !== undefined) w.bool(9, u.isUnmessagable, true);
  return w.finish();
}

function writeNodeInfo(n: NodeInfo): Uint8Array {
  const w = new WireWriter()
    .uint32(1, n.num)
    .message(2, n.user && writeUser(n.user))
    .float(4, n.snr)
    .fixed32(5, n.lastHeard)
    .uint32(7, n.channel)
    .bool(8, n.viaMqtt);
  if (n.hopsAway !== undefined) w.uint32(9, n.hopsAway, true);
  return w.bool(10, n.isFavorite).bool(11, n.isIgnored).bool(12, n.isKeyManuallyVerified).bool(13, n.isMuted).finish();
}

function writeDeviceMetadata(m: DeviceMetadata): Uint8Array {
  const w = new WireWriter().string(1, m.firmwareVersion);
  for (const [f, [key, type]] of Object.entries(METADATA_VARINTS)) {
    const v = m[key];
    if (type === 'bool') w.bool(Number(f), v as boolean);
    else if (type === 'int32') w.int32(Number(f), v as number);
    else w.uint32(Number(f), v as number);
  }
  return w.finish();
}

function writeChannelSettings(s: ChannelSettings): Uint8Array {
  return new WireWriter()
    .bytes(2, s.psk)
    .string(3, s.name)
    .fixed32(4, s.id)
    .bool(5, s.uplinkEnabled)
    .bool(6, s.downlinkEnabled)
    .message(
      7,
      s.moduleSettings &&
        new WireWriter().uint32(1, s.moduleSettings.positionPrecision).bool(2, s.moduleSettings.isMuted).finish(),
    )
    .finish();
}

function writeChannel(c: Channel): Uint8Array {
  return new WireWriter()
    .int32(1, c.index)
    .message(2, c.settings && writeChannelSettings(c.settings))
    .int32(3, c.role)
    .finish();
}

function writeLoRaConfig(l: LoRaConfig): Uint8Array {
  const w = new WireWriter();
  for (const f of [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 103, 104, 105]) {
    if (f === 6) w.float(6, l.frequencyOffset);
    else if (f === 14) w.float(14, l.overrideFrequency);
    else if (f === 103) w.packedUint32(103, l.ignoreIncoming);
    else {
      const [key, type] = LORA_VARINTS[f as keyof typeof LORA_VARINTS];
      const v = l[key];
      if (type === 'bool') w.bool(f, v as boolean);
      else if (type === 'int32') w.int32(f, v as number);
      else w.uint32(f, v as number);
    }
  }
  return w.finish();
}

function writeConfig(c: Config): Uint8Array {
  const w = new WireWriter();
  if (c.kind === 'lora') w.message(CONFIG_SECTION_FIELDS.lora, writeLoRaConfig(c.lora));
  else if (c.kind === 'other') w.bytes(c.field, c.raw, true);
  return w.finish();
}

function writeLogRecord(l: LogRecord): Uint8Array {
  return new WireWriter().string(1, l.message).fixed32(2, l.time).string(3, l.source).int32(4, l.level).finish();
}

function writeClientNotification(c: ClientNotification): Uint8Array {
  const w = new WireWriter();
  if (c.replyId !== undefined) w.uint32(1, c.replyId, true);
  return w.fixed32(2, c.time).int32(3, c.level).string(4, c.message).finish();
}

/** Encodes a FromRadio. Throws MT_PB_INVALID_VALUE for out-of-range numbers. */
export function encodeFromRadio(m: FromRadio): Uint8Array {
  const w = new WireWriter().uint32(1, m.id);
  const p = m.payload;
  switch (p.kind) {
    case 'packet':
      w.message(2, writeMeshPacket(p.packet));
      break;
    case 'myInfo':
      w.message(3, writeMyNodeInfo(p.myInfo));
      break;
    case 'nodeInfo':
      w.message(4, writeNodeInfo(p.nodeInfo));
      break;
    case 'config':
      w.message(5, writeConfig(p.config));
      break;
    case 'logRecord':
      w.message(6, writeLogRecord(p.logRecord));
      break;
    case 'configCompleteId':
      w.uint32(7, p.configCompleteId, true);
      break;
    case 'rebooted':
      w.bool(8, p.rebooted, true);
      break;
    case 'channel':
      w.message(10, writeChannel(p.channel));
      break;
    case 'queueStatus':
      w.message(11, writeQueueStatus(p.queueStatus));
      break;
    case 'metadata':
      w.message(13, writeDeviceMetadata(p.metadata));
      break;
    case 'clientNotification':
      w.message(16, writeClientNotification(p.clientNotification));
      break;
    case 'skipped':
      w.bytes(p.field, p.raw, true);
      break;
    case 'none':
      break;
  }
  return w.finish();
}

/** Encodes a ToRadio. Throws MT_PB_INVALID_VALUE for out-of-range numbers. */
export function encodeToRadio(m: ToRadio): Uint8Array {
  const w = new WireWriter();
  const p = m.payload;
  switch (p.kind) {
    case 'packet':
      w.message(1, writeMeshPacket(p.packet));
      break;
    case 'wantConfigId':
      w.uint32(3, p.wantConfigId, true);
      break;
    case 'disconnect':
      w.bool(4, p.disconnect, true);
      break;
    case 'heartbeat':
      w.message(7, new WireWriter().uint32(1, p.heartbeat.nonce).finish());
      break;
    case 'skipped':
      w.bytes(p.field, p.raw, true);
      break;
    case 'none':
      break;
  }
  return w.finish();
}

/** Encodes a Data message. */
export function encodeData(d: Data): Uint8Array {
  return writeData(d);
}

/** Encodes a Routing message. */
export function encodeRouting(r: Routing): Uint8Array {
  return writeRouting(r);
}

/** Encodes a MeshPacket. */
export function encodeMeshPacket(p: MeshPacket): Uint8Array {
  return writeMeshPacket(p);
}

/** "!%08x", the user id Meshtastic derives from a node number. */
export function nodeIdOf(num: number): string {
  return `!${(num >>> 0).toString(16).padStart(8, '0')}`;
}
