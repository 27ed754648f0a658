// `outpost gateway run` (the daemon, as outpost-gateway.service runs it) and `outpost gateway status`, which
// asks the running daemon over its local API socket.

import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { GatewayStatus } from '../../gateway/gateway.ts';
import { getFromGateway } from '../../gateway/local-api.ts';
import { OutpostError } from '../../protocol/errors.ts';
import { createLogger, type LogFormat } from '../../protocol/log.ts';
import { type Command, type CommandContext, optString, print } from '../command.ts';
import { EXIT } from '../exit.ts';
import { gatewayConfigPath, gatewaySocketPath, gatewayStateDir, loadGatewayConfig } from '../gateway-paths.ts';
import { readStdin } from '../io.ts';
import { createNativeAddonLoader } from '../native-addons.ts';
import { createSdNotifier } from '../sd-notify.ts';

function stopped(ctx: CommandContext): Promise<void> {
  return new Promise((r) => {
    if (ctx.io.stopSignal.aborted) r();
    else ctx.io.stopSignal.addEventListener('abort', () => r(), { once: true });
  });
}

const run: Command = {
  path: ['gateway', 'run'],
  summary: 'run the LoRa gateway daemon (radios ⇄ control plane, store-and-forward both ways)',
  usage: '[--config FILE]',
  options: { config: { type: 'string' } },
  async run(ctx) {
    const configPath = gatewayConfigPath(optString(ctx, 'config'), ctx.io.env, ctx.io.cwd);
    const config = loadGatewayConfig(configPath);
    const format: LogFormat = ctx.io.env.JOURNAL_STREAM ? 'journald' : ctx.json ? 'json' : 'logfmt';
    const log = createLogger({ sink: (l) => ctx.io.stderr(`${l}\n`), level: config.gateway.log_level, format });
    const notifier = createSdNotifier({ env: ctx.io.env, log });
    // Loaded here, not at start-up: it pulls in the serial-port and SQLite addons.
    const { setupGatewayDaemon } = await import('../gateway-setup.ts');
    const daemon = setupGatewayDaemon({
      config,
      configPath,
      env: ctx.io.env,
      log,
      loader: createNativeAddonLoader({ env: ctx.io.env }),
    });
    let stopWatchdog = () => {};
    try {
      await daemon.api.listen();
      await daemon.gateway.start();
      const info = { event: 'running', id: daemon.did, name: config.gateway.name, socket: daemon.socketPath };
      print(
        ctx,
        info,
        () => `gateway ${info.name} running: ${info.id}\n  status: outpost gateway status --config ${configPath}`,
      );
      await notifier.ready(`gateway ${config.gateway.name}: ${daemon.gateway.linkState().summary}`);
      stopWatchdog = notifier.startWatchdog();
      await stopped(ctx);
      await notifier.stopping();
    } finally {
      stopWatchdog();
      await daemon.close();
    }
    return EXIT.ok;
  },
};

function pct(x: number): string {
  return `${(x * 100).toFixed(1)} %`;
}

function median(h: GatewayStatus['radios'][number]['rssiDbm']): string {
  if (h.count === 0) return '—';
  const half = h.count / 2;
  const b = h.buckets.find((x) => x.count >= half);
  return b ? `≤ ${b.le}` : '—';
}

function human(s: GatewayStatus): string {
  const lines = [
    `gateway ${s.name} (${s.id})`,
    `  link: ${s.link.summary} — backhaul ${s.link.backhaul}, radios ${s.link.radios}, sessions ${s.link.sessions}${s.link.lastError ? `, last error: ${s.link.lastError}` : ''}`,
    'radios:',
  ];
  for (const r of s.radios) {
    const p = r.params;
    const mod = p
      ? `${(p.freqHz / 1e6).toFixed(3)} MHz SF${p.spreadingFactor} BW${p.bandwidthHz / 1000}`
      : 'modulation unknown';
    const dropped = Object.entries(r.frames.dropped)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
    lines.push(
      `  ${r.name.padEnd(10)} ${r.kind.padEnd(10)} ${r.state}${r.reason ? ` (${r.reason})` : ''}${r.firmware ? ` fw ${r.firmware}` : ''} ${mod}`,
      `             rx ${r.frames.received}, stored ${r.frames.stored}, dropped ${Object.values(r.frames.dropped).reduce((a, b) => a + b, 0)}${dropped ? ` (${dropped})` : ''}; tx ${r.frames.sent}`,
      `             airtime ${(r.airtime.totalMs / 1000).toFixed(1)} s total, ${(r.airtime.windowMs / 1000).toFixed(1)} s this window = ${pct(r.airtime.budgetUsed)} of the budget; RSSI median ${median(r.rssiDbm)} dBm, SNR median ${median(r.snrDb)} dB`,
    );
  }
  const drops = Object.entries(s.uplink.dropsByReason)
    .filter(([, v]) => v > 0)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  lines.push(
    `uplink: ${s.uplink.frames} frames stored (${s.uplink.bytes} B${s.uplink.oldestAgeMs !== null ? `, oldest ${(s.uplink.oldestAgeMs / 1000).toFixed(0)} s` : ''}), ${s.uplink.forwarded} forwarded${drops ? `, dropped: ${drops}` : ''}`,
    `downlink: ${s.downlink.byState.queued} queued, ${s.downlink.byState.transmitted} awaiting delivery, ${s.downlink.transmissions} transmissions, ${s.downlink.reportsPending} reports pending`,
    `devices: ${s.devices.served} served, ${s.devices.revoked} revoked`,
  );
  return lines.join('\n');
}

const status: Command = {
  path: ['gateway', 'status'],
  summary: 'show the running gateway: link, radios (state, airtime, RSSI/SNR, frames in/out/dropped), queues',
  usage: '[--config FILE | --socket PATH]',
  options: { config: { type: 'string' }, socket: { type: 'string' } },
  async run(ctx) {
    let socket = optString(ctx, 'socket');
    if (!socket) {
      const configPath = gatewayConfigPath(optString(ctx, 'config'), ctx.io.env, ctx.io.cwd);
      const config = loadGatewayConfig(configPath);
      socket = gatewaySocketPath(config, gatewayStateDir(config, configPath, ctx.io.env), ctx.io.env);
    }
    const s = JSON.parse(await getFromGateway(socket, '/v1/status')) as GatewayStatus;
    print(ctx, s, () => human(s));
    return EXIT.ok;
  },
};

const enroll: Command = {
  path: ['gateway', 'enroll'],
  summary: 'enroll this gateway with a control plane (enroll token from a file or standard input, never argv)',
  usage: '--url URL --token-file PATH|- [--config FILE] [--ca-file PEM]',
  options: {
    url: { type: 'string' },
    'token-file': { type: 'string' },
    config: { type: 'string' },
    'ca-file': { type: 'string' },
  },
  async run(ctx) {
    const url = optString(ctx, 'url');
    const tokenFile = optString(ctx, 'token-file');
    if (!url || !/^https?:\/\//.test(url) || !tokenFile) {
      throw new OutpostError('USAGE', 'outpost gateway enroll --url https://… --token-file PATH|-');
    }
    const token = (
      tokenFile === '-' ? await readStdin(ctx.io) : readFileSync(resolve(ctx.io.cwd, tokenFile), 'utf8')
    ).trim();
    if (token.length === 0 || /\s/.test(token))
      throw new OutpostError('USAGE', 'the enroll token is empty or contains white space');
    const configPath = gatewayConfigPath(optString(ctx, 'config'), ctx.io.env, ctx.io.cwd);
    const config = loadGatewayConfig(configPath);
    const caFile = optString(ctx, 'ca-file');
    const log = createLogger({ sink: (l) => ctx.io.stderr(`${l}\n`), level: 'warning', format: 'logfmt' });
    const { enrollFromConfig } = await import('../gateway-setup.ts');
    const r = await enrollFromConfig({
      config,
      configPath,
      env: ctx.io.env,
      httpUrl: url,
      token,
      log,
      ...(caFile ? { ca: readFileSync(resolve(ctx.io.cwd, caFile)) } : {}),
    });
    print(ctx, { id: r.did, tid: r.enrollment.tid, wssUrl: r.enrollment.wssUrl, enrollment: r.path }, () =>
      [
        `enrolled: ${r.did}`,
        `  tenant ${r.enrollment.tid}`,
        `  upstream ${r.enrollment.wssUrl}`,
        '  start it: systemctl start outpost-gateway',
      ].join('\n'),
    );
    return EXIT.ok;
  },
};

export const gatewayCommands: readonly Command[] = [run, status, enroll];
