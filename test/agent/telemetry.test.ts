import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { builtinTools } from '../../agent/builtin-tools.ts';
import { parseConfig } from '../../agent/config.ts';
import { buildAgentManifest } from '../../agent/manifest-builder.ts';
import { deriveOutboxKey } from '../../agent/outbox-key.ts';
import { createRecentTelemetry } from '../../agent/recent-telemetry.ts';
import { createSamplers } from '../../agent/samplers.ts';
import type { SystemInfoSource } from '../../agent/system-info.ts';
import { createTelemetryIngest } from '../../agent/telemetry-ingest.ts';
import type { Uplink, UplinkState } from '../../agent/uplink.ts';
import { startUplinkPump } from '../../agent/uplink-pump.ts';
import { fromUtf8 } from '../../protocol/bytes.ts';
import { systemClock } from '../../protocol/clock.ts';
import { didKeyFromEd25519 } from '../../protocol/did-key.ts';
import { isOutpostError } from '../../protocol/errors.ts';
import { silentLogger } from '../../protocol/log.ts';
import { ed25519KeyPair } from '../../protocol/signing.ts';
import { decodeTelemetryUnit, verifyTelemetryUnit } from '../../protocol/telemetry.ts';
import { openDatabase } from '../../store/database.ts';
import { createOutbox, type Lease, OUTBOX_MIGRATIONS, type SeqRange } from '../../store/outbox.ts';
import { createSequence, SEQUENCE_MIGRATIONS } from '../../store/sequence.ts';

const dir = mkdtempSync(join(tmpdir(), 'outpost-telemetry-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const seed = new Uint8Array(32).fill(3);
const did = didKeyFromEd25519(ed25519KeyPair(seed).publicKey);

writeFileSync(join(dir, 'climate'), '#!/bin/sh\necho run >> runs.log\necho \'{"t": 21.5, "h": 60, "broken": "x"}\'\n');
chmodSync(join(dir, 'climate'), 0o755);
const configText = `
[[streams]]
name = "air.temperature"
unit = "Cel"
period_s = 3600
source = { kind = "exec", argv = ["./climate"], output = "json", field = "t" }
[[streams]]
name = "air.humidity"
unit = "%"
period_s = 3600
source = { kind = "exec", argv = ["./climate"], output = "json", field = "h" }
[[streams]]
name = "air.broken"
unit = "1"
period_s = 3600
source = { kind = "exec", argv = ["./climate"], output = "json", field = "broken" }
[[streams]]
name = "node.load"
unit = "1"
period_s = 3600
source = { kind = "system", metric = "load_1m" }
[[streams]]
name = "door.open"
unit = "1"
type = "boolean"
source = { kind = "ingest" }
`;

const systemInfo: SystemInfoSource = {
  info: async () => {
    throw new Error('unused');
  },
  sample: async () => ({
    cpu_temp_c: null,
    load_1m: 0.25,
    load_5m: 0.1,
    mem_used_ratio: 0.5,
    disk_used_ratio: 0.5,
    uptime_s: 9,
    throttled: null,
  }),
};

function setup() {
  const db = openDatabase(join(dir, `t-${Math.random()}.db`), { migrations: [OUTBOX_MIGRATIONS, SEQUENCE_MIGRATIONS] });
  const config = parseConfig(configText);
  const recent = createRecentTelemetry(10);
  const m = buildAgentManifest({
    config,
    configFile: join(dir, 'agent.toml'),
    configText,
    deviceId: did,
    agentVersion: '0.1.0',
    builtins: builtinTools({ systemInfo, recent }),
  });
  const outbox = createOutbox(db, { key: deriveOutboxKey(seed) });
  const ingest = createTelemetryIngest({
    outbox,
    sequence: createSequence(db, 'telemetry'),
    identitySeed: seed,
    streams: m.streams,
    recent,
    clock: systemClock,
  });
  return { db, outbox, ingest, recent, m };
}

describe('telemetry ingest', () => {
  it('signs units at the source and queues them, one unit per stream', async () => {
    const { db, outbox, ingest } = setup();
    const seqs = await ingest.ingest(
      [
        { stream: 'door.open', value: true },
        { stream: 'door.open', value: false, quality: ['estimated'] },
      ],
      'api',
    );
    assert.equal(seqs[1], seqs[0]! + 1);
    const lease = outbox.lease(100, 1 << 20, 1000);
    assert.equal(lease.items.length, 1);
    const unit = decodeTelemetryUnit(fromUtf8(lease.items[0]!.payload));
    verifyTelemetryUnit(unit, did);
    assert.deepEqual(
      unit.records.map((r) => [r.seq, r.value, r.quality]),
      [
        [seqs[0], true, undefined],
        [seqs[1], false, ['estimated']],
      ],
    );
    db.close();
  });

  it('refuses pushes to sampled streams, wrong types and unknown streams, storing nothing', async () => {
    const { db, outbox, ingest } = setup();
    const cases: [unknown, string][] = [
      [{ stream: 'air.temperature', value: 1 }, 'INGEST_INVALID'],
      [{ stream: 'door.open', value: 1 }, 'INGEST_INVALID'],
      [{ stream: 'no.such', value: 1 }, 'STREAM_NOT_FOUND'],
    ];
    for (const [rec, code] of cases) {
      await assert.rejects(
        ingest.ingest([{ stream: 'door.open', value: true }, rec as { stream: string; value: unknown }], 'api'),
        (e) => isOutpostError(e, code),
      );
    }
    assert.equal(outbox.stats().items, 0);
    db.close();
  });
});

describe('samplers', () => {
  it('share one program run between streams of the same source, and count a bad field as an error', async () => {
    const { db, ingest, recent, m } = setup();
    const errors: string[] = [];
    const samplers = createSamplers({
      streams: m.streams,
      ingest,
      systemInfo,
      clock: systemClock,
      log: silentLogger,
      workDir: dir,
      onError: (s) => errors.push(s),
    });
    const seen = new Promise<void>((resolve) => {
      const poll = () => (recent.read({ limit: 10 }).length >= 3 ? resolve() : setImmediate(poll));
      poll();
    });
    samplers.start();
    await seen;
    await samplers.stop();
    const values = Object.fromEntries(recent.read({ limit: 10 }).map((r) => [r.stream, r.value]));
    assert.deepEqual(values, { 'air.temperature': 21.5, 'air.humidity': 60, 'node.load': 0.25 });
    assert.equal(readFileSync(join(dir, 'runs.log'), 'utf8').trim().split('\n').length, 1, 'one run for both streams');
    assert.deepEqual(errors, ['air.broken']);
    const broken = samplers.states().find((s) => s.stream === 'air.broken')!;
    assert.equal(broken.consecutiveErrors, 1);
    assert.match(broken.lastError!, /finite number/);
    db.close();
  });
});

describe('uplink pump', () => {
  it('hands leases to the uplink, acks what it acknowledged and sends the rest again', async () => {
    const { db, outbox, ingest } = setup();
    await ingest.ingest([{ stream: 'door.open', value: true }], 'api');
    await ingest.ingest([{ stream: 'door.open', value: false }], 'api');
    const delivered: number[] = [];
    let state: UplinkState = 'disconnected';
    const listeners = new Set<(s: UplinkState) => void>();
    let done!: () => void;
    const finished = new Promise<void>((r) => {
      done = r;
    });
    let attempt = 0;
    // A loopback uplink: the receiver acknowledges only the first unit of the first delivery.
    const uplink: Uplink = {
      name: 'loopback',
      state: () => state,
      onStateChange: (l) => {
        listeners.add(l);
        return () => listeners.delete(l);
      },
      async deliver(lease: Lease): Promise<SeqRange[]> {
        attempt++;
        for (const i of lease.items) delivered.push(i.seq);
        const ranges = (attempt === 1 ? lease.items.slice(0, 1) : lease.items).map((i) => ({
          stream: i.stream,
          from: i.seq,
          to: i.seq,
        }));
        if (attempt === 2) setImmediate(done);
        return ranges;
      },
      start: async () => {},
      stop: async () => {},
    };
    const pump = startUplinkPump({ outbox, uplink, log: silentLogger, retryDelayMs: 1 });
    state = 'connected';
    for (const l of listeners) l(state);
    await finished;
    await pump.stop();
    assert.deepEqual(delivered, [1, 2, 2]);
    assert.equal(outbox.stats().items, 0);
    db.close();
  });
});
