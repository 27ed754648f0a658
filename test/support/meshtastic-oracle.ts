// Test oracle for the hand-written Meshtastic protobuf subset: converts our values to and from the
// official generated messages (@meshtastic/protobufs, GPL, devDependency only) so tests can encode
// with one implementation and decode with the other. Never imported outside test/.

import { create, type DescField, type DescMessage, fromBinary, type MessageShape, toBinary } from '@bufbuild/protobuf';
import { Mesh, Channel as PbChannel, Config as PbConfig } from '@meshtastic/protobufs';
import type {
  Channel,
  ChannelSettings,
  ClientNotification,
  Config,
  Data,
  DeviceMetadata,
  FromRadio,
  FromRadioPayload,
  LogRecord,
  LoRaConfig,
  MeshPacket,
  MyNodeInfo,
  NodeInfo,
  QueueStatus,
  Routing,
  ToRadio,
  ToRadioPayload,
  User,
} from '../../firmware-bridge/meshtastic/protobuf.ts';

export { Mesh, PbChannel, PbConfig };

type Init = Record<string, unknown>;
type Pb = Record<string, unknown> & { $typeName: string };

function fieldSchema(schema: DescMessage, number: number): DescMessage {
  const f = schema.fields.find((x: DescField) => x.number === number);
  if (f?.fieldKind !== 'message') throw new Error(`${schema.typeName} has no message field ${number}`);
  return f.message;
}

function rawToPb(schema: DescMessage, number: number, raw: Uint8Array): unknown {
  return fromBinary(fieldSchema(schema, number), raw);
}

function pbToRaw(schema: DescMessage, number: number, value: unknown): Uint8Array {
  const s = fieldSchema(schema, number);
  return toBinary(s, value as MessageShape<typeof s>);
}

const fieldName = (schema: DescMessage, number: number) => schema.fields.find((f) => f.number === number)!.localName;

// ---------------------------------------------------------------------------------------------------
// ours → init objects for create()

export const toPb = {
  data: (d: Data): Init => ({ ...d }),
  meshPacket(p: MeshPacket): Init {
    const { payload, ...rest } = p;
    return {
      ...rest,
      payloadVariant:
        payload.kind === 'decoded'
          ? { case: 'decoded', value: toPb.data(payload.data) }
          : payload.kind === 'encrypted'
            ? { case: 'encrypted', value: payload.bytes }
            : { case: undefined },
    };
  },
  routing(r: Routing): Init {
    if (r.kind === 'error') return { variant: { case: 'errorReason', value: r.errorReason } };
    if (r.kind === 'none') return { variant: { case: undefined } };
    const n = r.kind === 'routeRequest' ? 1 : 2;
    return { variant: { case: r.kind, value: rawToPb(Mesh.RoutingSchema, n, r.raw) } };
  },
  queueStatus: (q: QueueStatus): Init => ({ ...q }),
  myNodeInfo: (m: MyNodeInfo): Init => ({ ...m }),
  user: (u: User): Init => ({ ...u }),
  nodeInfo: (n: NodeInfo): Init => ({ ...n, user: n.user && toPb.user(n.user) }),
  metadata: (m: DeviceMetadata): Init => ({ ...m }),
  channelSettings: (s: ChannelSettings): Init => ({ ...s }),
  channel: (c: Channel): Init => ({ ...c, settings: c.settings && toPb.channelSettings(c.settings) }),
  lora: (l: LoRaConfig): Init => ({ ...l, ignoreIncoming: [...l.ignoreIncoming] }),
  config(c: Config): Init {
    if (c.kind === 'lora') return { payloadVariant: { case: 'lora', value: toPb.lora(c.lora) } };
    if (c.kind === 'none') return { payloadVariant: { case: undefined } };
    return {
      payloadVariant: {
        case: fieldName(PbConfig.ConfigSchema, c.field),
        value: rawToPb(PbConfig.ConfigSchema, c.field, c.raw),
      },
    };
  },
  logRecord: (l: LogRecord): Init => ({ ...l }),
  clientNotification: (c: ClientNotification): Init => ({ ...c, payloadVariant: { case: undefined } }),
  fromRadio(m: FromRadio): Init {
    return { id: m.id, payloadVariant: fromRadioVariant(m.payload) };
  },
  toRadio(m: ToRadio): Init {
    return { payloadVariant: toRadioVariant(m.payload) };
  },
};

function fromRadioVariant(p: FromRadioPayload): Init {
  switch (p.kind) {
    case 'packet':
      return { case: 'packet', value: toPb.meshPacket(p.packet) };
    case 'myInfo':
      return { case: 'myInfo', value: toPb.myNodeInfo(p.myInfo) };
    case 'nodeInfo':
      return { case: 'nodeInfo', value: toPb.nodeInfo(p.nodeInfo) };
    case 'config':
      return { case: 'config', value: toPb.config(p.config) };
    case 'logRecord':
      return { case: 'logRecord', value: toPb.logRecord(p.logRecord) };
    case 'configCompleteId':
      return { case: 'configCompleteId', value: p.configCompleteId };
    case 'rebooted':
      return { case: 'rebooted', value: p.rebooted };
    case 'channel':
      return { case: 'channel', value: toPb.channel(p.channel) };
    case 'queueStatus':
      return { case: 'queueStatus', value: toPb.queueStatus(p.queueStatus) };
    case 'metadata':
      return { case: 'metadata', value: toPb.metadata(p.metadata) };
    case 'clientNotification':
      return { case: 'clientNotification', value: toPb.clientNotification(p.clientNotification) };
    case 'skipped':
      return {
        case: fieldName(Mesh.FromRadioSchema, p.field),
        value: rawToPb(Mesh.FromRadioSchema, p.field, p.raw),
      };
    case 'none':
      return { case: undefined };
  }
}

function toRadioVariant(p: ToRadioPayload): Init {
  switch (p.kind) {
    case 'packet':
      return { case: 'packet', value: toPb.meshPacket(p.packet) };
    case 'wantConfigId':
      return { case: 'wantConfigId', value: p.wantConfigId };
    case 'disconnect':
      return { case: 'disconnect', value: p.disconnect };
    case 'heartbeat':
      return { case: 'heartbeat', value: { nonce: p.heartbeat.nonce } };
    case 'skipped':
      return { case: fieldName(Mesh.ToRadioSchema, p.field), value: rawToPb(Mesh.ToRadioSchema, p.field, p.raw) };
    case 'none':
      return { case: undefined };
  }
}

// ---------------------------------------------------------------------------------------------------
// generated messages → ours

function strip(m: Pb, ...drop: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(m)) {
    if (k === '$typeName' || k === '$unknown' || drop.includes(k)) continue;
    if (v === undefined) continue;
    out[k] = v;
  }
  return out;
}

type Variant = { case: string | undefined; value?: unknown };

export const fromPb = {
  data: (m: Pb): Data => strip(m) as unknown as Data,
  meshPacket(m: Pb): MeshPacket {
    const v = m.payloadVariant as Variant;
    return {
      ...(strip(m, 'payloadVariant', 'delayed') as object),
      payload:
        v.case === 'decoded'
          ? { kind: 'decoded', data: fromPb.data(v.value as Pb) }
          : v.case === 'encrypted'
            ? { kind: 'encrypted', bytes: v.value as Uint8Array }
            : { kind: 'none' },
    } as MeshPacket;
  },
  routing(m: Pb): Routing {
    const v = m.variant as Variant;
    if (v.case === 'errorReason') return { kind: 'error', errorReason: v.value as number };
    if (v.case === 'routeRequest' || v.case === 'routeReply') {
      return { kind: v.case, raw: pbToRaw(Mesh.RoutingSchema, v.case === 'routeRequest' ? 1 : 2, v.value) };
    }
    return { kind: 'none' };
  },
  nodeInfo(m: Pb): NodeInfo {
    const user = m.user as Pb | undefined;
    return {
      ...(strip(m, 'user', 'position', 'deviceMetrics') as object),
      ...(user ? { user: strip(user, 'macaddr') as unknown as User } : {}),
    } as NodeInfo;
  },
  channel(m: Pb): Channel {
    const s = m.settings as Pb | undefined;
    const ms = s?.moduleSettings as Pb | undefined;
    return {
      ...(strip(m, 'settings') as object),
      ...(s
        ? {
            settings: {
              ...(strip(s, 'channelNum', 'moduleSettings') as object),
              ...(ms ? { moduleSettings: strip(ms) } : {}),
            } as ChannelSettings,
          }
        : {}),
    } as Channel;
  },
  config(m: Pb): Config {
    const v = m.payloadVariant as Variant;
    if (v.case === undefined) return { kind: 'none' };
    if (v.case === 'lora') return { kind: 'lora', lora: strip(v.value as Pb) as unknown as LoRaConfig };
    const f = PbConfig.ConfigSchema.fields.find((x: DescField) => x.localName === v.case)!;
    return { kind: 'other', field: f.number, raw: pbToRaw(PbConfig.ConfigSchema, f.number, v.value) };
  },
  fromRadio(m: Pb): FromRadio {
    const v = m.payloadVariant as Variant;
    const value = v.value as Pb;
    const id = m.id as number;
    const payload = ((): FromRadioPayload => {
      switch (v.case) {
        case undefined:
          return { kind: 'none' };
        case 'packet':
          return { kind: 'packet', packet: fromPb.meshPacket(value) };
        case 'myInfo':
          return { kind: 'myInfo', myInfo: strip(value) as unknown as MyNodeInfo };
        case 'nodeInfo':
          return { kind: 'nodeInfo', nodeInfo: fromPb.nodeInfo(value) };
        case 'config':
          return { kind: 'config', config: fromPb.config(value) };
        case 'logRecord':
          return { kind: 'logRecord', logRecord: strip(value) as unknown as LogRecord };
        case 'configCompleteId':
          return { kind: 'configCompleteId', configCompleteId: v.value as number };
        case 'rebooted':
          return { kind: 'rebooted', rebooted: v.value as boolean };
        case 'channel':
          return { kind: 'channel', channel: fromPb.channel(value) };
        case 'queueStatus':
          return { kind: 'queueStatus', queueStatus: strip(value) as unknown as QueueStatus };
        case 'metadata':
          return { kind: 'metadata', metadata: strip(value) as unknown as DeviceMetadata };
        case 'clientNotification':
          return {
            kind: 'clientNotification',
            clientNotification: strip(value, 'payloadVariant') as unknown as ClientNotification,
          };
        default: {
          const f = Mesh.FromRadioSchema.fields.find((x: DescField) => x.localName === v.case)!;
          return {
            kind: 'skipped',
            field: f.number as 9,
            raw: pbToRaw(Mesh.FromRadioSchema, f.number, v.value),
          };
        }
      }
    })();
    return { id, payload };
  },
  toRadio(m: Pb): ToRadio {
    const v = m.payloadVariant as Variant;
    switch (v.case) {
      case undefined:
        return { payload: { kind: 'none' } };
      case 'packet':
        return { payload: { kind: 'packet', packet: fromPb.meshPacket(v.value as Pb) } };
      case 'wantConfigId':
        return { payload: { kind: 'wantConfigId', wantConfigId: v.value as number } };
      case 'disconnect':
        return { payload: { kind: 'disconnect', disconnect: v.value as boolean } };
      case 'heartbeat':
        return { payload: { kind: 'heartbeat', heartbeat: { nonce: (v.value as Pb).nonce as number } } };
      default: {
        const f = Mesh.ToRadioSchema.fields.find((x: DescField) => x.localName === v.case)!;
        return {
          payload: { kind: 'skipped', field: f.number as 5, raw: pbToRaw(Mesh.ToRadioSchema, f.number, v.value) },
        };
      }
    }
  },
};

/** Encodes `init` with the official schema. */
export function oracleEncode(schema: DescMessage, init: Init): Uint8Array {
  return toBinary(schema, create(schema, init as never));
}

/** Decodes `bytes` with the official schema. */
export function oracleDecode(schema: DescMessage, bytes: Uint8Array): Pb {
  return fromBinary(schema, bytes) as unknown as Pb;
}
