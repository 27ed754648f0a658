// `outpost selftest [--json]`: proves this build works on this machine — SQLite, the serial binding, Ed25519 and
// hybrid signatures, a TLS WebSocket round trip on 127.0.0.1 — in development and inside the single binary.

import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isSea } from 'node:sea';
import type { TLSSocket } from 'node:tls';
import { WebSocket, WebSocketServer } from 'ws';
import { type Clock, systemClock } from '../../protocol/clock.ts';
import { isOutpostError, OutpostError } from '../../protocol/errors.ts';
import {
  ed25519KeyPair,
  hybridKeyPair,
  signEd25519,
  signHybrid,
  verifyEd25519,
  verifyHybrid,
} from '../../protocol/signing.ts';
import { type MigrationSet, openDatabase } from '../../store/database.ts';
import { buildInfo } from '../build-info.ts';
import { type Command, optString, print } from '../command.ts';
import { EXIT } from '../exit.ts';
import { createNativeAddonLoader, type NativeAddonLoader } from '../native-addons.ts';
import { selfSignedLoopbackCert } from '../self-signed-cert.ts';

export type SelftestCheckName = 'sqlite' | 'serialport' | 'signing' | 'wss';

export interface SelftestCheck {
  name: SelftestCheckName;
  ok: boolean;
  /** What was proven (or, when !ok, the error message). */
  detail: string;
  ms: number;
  /** The error's stable code when the check failed with an OutpostError, else 'ERROR' or 'TIMEOUT'. */
  code?: string;
}

export interface SelftestReport {
  ok: boolean;
  version: string;
  platform: string;
  arch: string;
  /** 'binary' inside the single executable, 'development' when run from source. */
  mode: 'binary' | 'development';
  /** Where native addons were extracted (binary only). */
  nativeCache?: string;
  /** The Node/V8 options the process runs with (the binary embeds cli/runtime-flags.ts). */
  execArgv: string[];
  checks: SelftestCheck[];
}

export interface SelftestDeps {
  loader: NativeAddonLoader;
  clock: Clock;
  /** Parent of the temporary SQLite directory. */
  tmpDir: string;
  timeoutMs: number;
}

const SQLITE_ROWS = 100;

/** The self-test's own table, migrated by the store like any component's. */
const SELFTEST_MIGRATIONS: MigrationSet = {
  component: 'selftest',
  migrations: [
    { version: 1, name: 'rows', up: 'CREATE TABLE selftest_rows (id INTEGER PRIMARY KEY, v BLOB NOT NULL) STRICT' },
  ],
};

async function checkSqlite(deps: SelftestDeps): Promise<string> {
  const dir = mkdtempSync(join(deps.tmpDir, 'outpost-selftest-'));
  try {
    // The store's own open path: WAL, synchronous=FULL, integrity check, migrations.
    const db = openDatabase(join(dir, 'selftest.db'), {
      migrations: [SELFTEST_MIGRATIONS],
      nativeBinding: deps.loader.load('better-sqlite3'),
      clock: deps.clock,
    });
    try {
      const insert = db.sqlite.prepare('INSERT INTO selftest_rows (v) VALUES (?)');
      const rows = Array.from({ length: SQLITE_ROWS }, () => randomBytes(32));
      db.write(() => {
        for (const r of rows) insert.run(r);
      });
      const back = db.read(
        () => db.sqlite.prepare('SELECT v FROM selftest_rows ORDER BY id').all() as Array<{ v: Buffer }>,
      );
      if (back.length !== rows.length || back.some((r, i) => !r.v.equals(rows[i]!))) {
        throw new Error(`read back ${back.length} rows that differ from the ${rows.length} written`);
      }
      const version = db.read(() => (db.sqlite.prepare('SELECT sqlite_version() AS v').get() as { v: string }).v);
      const mode = db.sqlite.pragma('journal_mode', { simple: true }) as string;
      return `SQLite ${version}, journal ${mode}, ${db.integrityCheck} integrity check: ${SQLITE_ROWS} rows written and read back`;
    } finally {
      db.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function checkSerialport(deps: SelftestDeps): Promise<string> {
  deps.loader.load('serialport');
  const { LinuxBinding } = await import('@serialport/bindings-cpp');
  // A pseudo-terminal master exercises the native open (termios, flock), update and close with no hardware.
  const port = await LinuxBinding.open({ path: '/dev/ptmx', baudRate: 115200 });
  try {
    await port.update({ baudRate: 9600 });
  } finally {
    await port.close();
  }
  let listed: string;
  try {
    listed = `${(await LinuxBinding.list()).length} serial port(s) listed`;
  } catch (e) {
    // Listing runs udevadm, which a container may lack; the native binding itself was proven above.
    listed = `port list unavailable (${(e as Error).message})`;
  }
  return `native binding loaded; /dev/ptmx opened, reconfigured and closed; ${listed}`;
}

async function checkSigning(): Promise<string> {
  const context = 'outpost/selftest/v1';
  const message = randomBytes(64);
  const tampered = Uint8Array.from(message);
  tampered[0]! ^= 1;
  const ed = ed25519KeyPair();
  const edSig = signEd25519(ed.seed, context, message);
  if (!verifyEd25519(ed.publicKey, context, message, edSig)) throw new Error('Ed25519 signature did not verify');
  if (verifyEd25519(ed.publicKey, context, tampered, edSig)) throw new Error('Ed25519 verified a tampered message');
  const hy = hybridKeyPair();
  const hySig = signHybrid(hy, context, message);
  if (!verifyHybrid(hy.publicKey, context, message, hySig)) throw new Error('hybrid signature did not verify');
  if (verifyHybrid(hy.publicKey, context, tampered, hySig)) throw new Error('hybrid verified a tampered message');
  return `Ed25519 and hybrid Ed25519+ML-DSA-65 (${hySig.length} B) sign, verify and reject a tampered message`;
}

async function checkWss(deps: SelftestDeps): Promise<string> {
  const { certPem, keyPem } = selfSignedLoopbackCert(deps.clock.nowMs());
  const server = createServer({ key: keyPem, cert: certPem });
  const wss = new WebSocketServer({ server, maxPayload: 4096 });
  wss.on('connection', (socket) => socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary })));
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    const { port } = server.address() as AddressInfo;
    const payload = randomBytes(32);
    const client = new WebSocket(`wss://127.0.0.1:${port}/`, { ca: certPem, maxPayload: 4096 });
    try {
      const tls = await new Promise<string>((resolve, reject) => {
        client.once('error', reject);
        client.once('open', () => {
          const socket = (client as unknown as { _socket: TLSSocket })._socket;
          client.send(payload);
          client.once('message', (data) => {
            if (!Buffer.isBuffer(data) || !data.equals(payload)) reject(new Error('echo differs from what was sent'));
            else resolve(`${socket.getProtocol()} ${socket.getCipher().name}`);
          });
        });
      });
      return `wss://127.0.0.1:${port} echoed 32 bytes over ${tls} (self-signed Ed25519 certificate)`;
    } finally {
      client.terminate();
    }
  } finally {
    for (const c of wss.clients) c.terminate();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

async function timed(name: SelftestCheckName, deps: SelftestDeps, fn: () => Promise<string>): Promise<SelftestCheck> {
  const start = deps.clock.monotonicMs();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(
      () => reject(Object.assign(new Error(`timed out after ${deps.timeoutMs} ms`), { code: 'TIMEOUT' })),
      deps.timeoutMs,
    );
  });
  try {
    const detail = await Promise.race([fn(), timeout]);
    return { name, ok: true, detail, ms: Math.round(deps.clock.monotonicMs() - start) };
  } catch (e) {
    const code = isOutpostError(e) ? e.code : (e as { code?: unknown }).code === 'TIMEOUT' ? 'TIMEOUT' : 'ERROR';
    return { name, ok: false, detail: (e as Error).message, code, ms: Math.round(deps.clock.monotonicMs() - start) };
  } finally {
    clearTimeout(timer);
  }
}

/** Runs every check (one after another, so one failure cannot disturb another) and returns the report. */
export async function runSelftest(deps: SelftestDeps): Promise<SelftestReport> {
  const info = buildInfo();
  const checks = [
    await timed('sqlite', deps, () => checkSqlite(deps)),
    await timed('serialport', deps, () => checkSerialport(deps)),
    await timed('signing', deps, () => checkSigning()),
    await timed('wss', deps, () => checkWss(deps)),
  ];
  let nativeCache: string | undefined;
  try {
    nativeCache = deps.loader.cacheDir();
  } catch {
    nativeCache = undefined; // already reported by the checks that needed it
  }
  return {
    ok: checks.every((c) => c.ok),
    version: info.version,
    platform: info.platform,
    arch: info.arch,
    mode: isSea() ? 'binary' : 'development',
    ...(nativeCache ? { nativeCache } : {}),
    execArgv: [...process.execArgv],
    checks,
  };
}

function humanReport(r: SelftestReport): string {
  const lines = r.checks.map(
    (c) => `  ${c.ok ? 'ok  ' : 'FAIL'}  ${c.name.padEnd(10)}  ${c.detail}${c.code ? ` [${c.code}]` : ''} (${c.ms} ms)`,
  );
  const failed = r.checks.filter((c) => !c.ok).length;
  return [
    `outpost selftest ${r.version} (${r.platform}-${r.arch}, ${r.mode})`,
    ...lines,
    ...(r.nativeCache ? [`  native addons: ${r.nativeCache}`] : []),
    failed === 0 ? `all ${r.checks.length} checks passed` : `${failed} of ${r.checks.length} checks FAILED`,
  ].join('\n');
}

export const selftestCommands: Command[] = [
  {
    path: ['selftest'],
    summary: 'check SQLite, the serial binding, signatures and a loopback WSS round trip on this machine',
    usage: '[--timeout-ms=MS] [--json]',
    options: { 'timeout-ms': { type: 'string' } },
    async run(ctx) {
      const timeoutText = optString(ctx, 'timeout-ms') ?? '60000';
      const timeoutMs = Number(timeoutText);
      if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) {
        throw new OutpostError('USAGE', `--timeout-ms must be a positive integer, got ${timeoutText}`);
      }
      const report = await runSelftest({
        loader: createNativeAddonLoader({ env: ctx.io.env }),
        clock: systemClock,
        tmpDir: ctx.io.env.TMPDIR || tmpdir(),
        timeoutMs,
      });
      print(ctx, report, () => humanReport(report));
      return report.ok ? EXIT.ok : EXIT.failure;
    },
  },
];
