// `outpost agent run` (the daemon), `outpost status` and `outpost identity`.

import { isSea } from 'node:sea';
import type { IdentityView, StatusView } from '../../agent/api-types.ts';
import type { Uplink } from '../../agent/uplink.ts';
import { systemClock } from '../../protocol/clock.ts';
import { isOutpostError, OutpostError } from '../../protocol/errors.ts';
import { createLogger, type Logger } from '../../protocol/log.ts';
import { MetricsRegistry } from '../../protocol/metrics.ts';
import { AGENT_OPTIONS, agentClient, loadAgentConfig } from '../agent-setup.ts';
import { buildInfo } from '../build-info.ts';
import { type Command, print } from '../command.ts';
import { EXIT } from '../exit.ts';

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

export function formatDuration(s: number): string {
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86_400)}d${Math.floor((s % 86_400) / 3600)}h`;
}

function statusText(s: StatusView): string {
  const lines = [
    `${s.name} (${s.did}): ${s.status.state}, ${s.status.link.replace('_', '-')}`,
    `  version ${s.version}, up ${formatDuration(s.uptime_s)}, manifest ${s.manifest_hash.slice(0, 19)}… (${s.tools} tools, ${s.streams} streams)${s.manifest_changed_at_start ? ' — changed at this start' : ''}`,
    s.trust.configured
      ? `  trust: tenant ${s.trust.tenant_id}, ${s.trust.approvers} approvers`
      : '  trust: none (only read_only tools, for local callers)',
    `  queue: ${s.queue.depth} units, ${formatBytes(s.queue.bytes)} of ${formatBytes(s.queue.max_bytes)}${s.queue.oldest_age_s !== null ? `, oldest ${formatDuration(s.queue.oldest_age_s)}` : ''}${Object.keys(s.queue.dropped).length > 0 ? `, dropped ${JSON.stringify(s.queue.dropped)}` : ''}`,
    `  local API: ${s.endpoints.socket}`,
    ...(s.endpoints.mcp_http ? [`  MCP (HTTP): ${s.endpoints.mcp_http}`] : []),
    ...(s.endpoints.metrics ? [`  metrics: ${s.endpoints.metrics}`] : []),
    ...s.samplers.map(
      (x) =>
        `  sampler ${x.stream}: ${x.samples} samples, ${x.errors} errors${x.last_error ? ` (last: ${x.last_error})` : ''}`,
    ),
    ...(s.uplink
      ? [
          `  uplink: ${s.uplink.state}${s.uplink.url ? ` to ${s.uplink.url}` : ''}${s.uplink.lastError ? ` (last error ${s.uplink.lastError})` : ''}`,
        ]
      : []),
    ...s.status.problems.map((p) => `  ${p.severity === 'info' ? 'i' : '!'} ${p.message}`),
  ];
  return lines.join('\n');
}

/** The WSS link when the device is enrolled (heartbeat and timeout from OUTPOST_LINK_HEARTBEAT_MS / _TIMEOUT_MS). */
async function upstreamLinkFor(
  stateDir: string,
  env: Readonly<Record<string, string | undefined>>,
  log: Logger,
  metrics: MetricsRegistry,
): Promise<Uplink | undefined> {
  const [{ readEnrollment }, { createUpstreamLink }] = await Promise.all([
    import('../../agent/enrollment.ts'),
    import('../../agent/upstream-link.ts'),
  ]);
  if (!readEnrollment(stateDir)) return undefined;
  const ms = (name: string) => {
    const v = env[name];
    if (v === undefined) return undefined;
    if (!/^\d{3,9}$/.test(v)) throw new OutpostError('CONFIG_INVALID', `${name} must be milliseconds (≥ 100)`);
    return Number(v);
  };
  const heartbeatMs = ms('OUTPOST_LINK_HEARTBEAT_MS');
  const timeoutMs = ms('OUTPOST_LINK_TIMEOUT_MS');
  return createUpstreamLink({
    stateDir,
    clock: systemClock,
    log,
    metrics,
    ...(heartbeatMs ? { heartbeatMs } : {}),
    ...(timeoutMs ? { timeoutMs } : {}),
  });
}

export const agentCommands: Command[] = [
  {
    path: ['agent', 'run'],
    summary: 'run the device agent in the foreground (systemd starts it as outpost-agent.service)',
    usage: '[--config FILE]',
    options: AGENT_OPTIONS,
    async run(ctx) {
      const { config, text, paths } = loadAgentConfig(ctx);
      // The daemon's modules load only for this command: every other command stays quick to start.
      const [{ createAgent }, { createSdNotifier }, { createNativeAddonLoader }] = await Promise.all([
        import('../../agent/daemon.ts'),
        import('../sd-notify.ts'),
        import('../native-addons.ts'),
      ]);
      const env = ctx.io.env;
      const log = createLogger({
        sink: (line) => ctx.io.stderr(`${line}\n`),
        level: config.agent.log_level,
        format: env.JOURNAL_STREAM ? 'journald' : 'logfmt',
        clock: systemClock,
      });
      const notifier = createSdNotifier({ env, log });
      // Inside the single binary better-sqlite3 comes from the embedded addon; in development from node_modules.
      const nativeBinding = isSea() ? createNativeAddonLoader({ env }).load('better-sqlite3') : undefined;
      const metrics = new MetricsRegistry();
      const uplink = await upstreamLinkFor(paths.stateDir, env, log, metrics);
      const agent = createAgent({
        config,
        configText: text,
        paths,
        env,
        clock: systemClock,
        log,
        metrics,
        version: buildInfo().version,
        ...(nativeBinding ? { nativeBinding } : {}),
        ...(uplink ? { uplink } : {}),
      });
      try {
        await agent.start();
      } catch (e) {
        log.crit('agent.start_failed', { code: isOutpostError(e) ? e.code : 'INTERNAL', err: e as Error });
        await agent.stop();
        throw e;
      }
      const s = agent.status();
      await notifier.ready(`${s.status.state}, ${s.status.link}`);
      const stopWatchdog = notifier.startWatchdog(() => agent.status().status.state !== 'failing');
      if (!ctx.io.stopSignal.aborted) {
        await new Promise<void>((resolve) =>
          ctx.io.stopSignal.addEventListener('abort', () => resolve(), { once: true }),
        );
      }
      log.notice('agent.stopping', { reason: 'signal' });
      stopWatchdog();
      await notifier.stopping();
      await agent.stop();
      return EXIT.ok;
    },
  },
  {
    path: ['status'],
    summary: 'show the running agent: state, link, trust, queue, endpoints and problems',
    usage: '[--socket PATH] [--json]',
    options: AGENT_OPTIONS,
    async run(ctx) {
      const s = await agentClient(ctx).get<StatusView>('/v1/status');
      print(ctx, s, () => statusText(s));
      return s.status.state === 'failing' ? EXIT.unavailable : EXIT.ok;
    },
  },
  {
    path: ['identity'],
    summary: "show the device's did:key (from the running agent, else from its key file)",
    usage: '[--config FILE] [--json]',
    options: AGENT_OPTIONS,
    async run(ctx) {
      let view: IdentityView;
      let source = 'agent';
      try {
        view = await agentClient(ctx).get<IdentityView>('/v1/identity');
      } catch (e) {
        if (!isOutpostError(e, 'DAEMON_DOWN')) throw e;
        // Not running: read the public half from the key file (never creating one, never printing the key).
        const { paths } = loadAgentConfig(ctx);
        const { identityView, loadIdentity } = await import('../../agent/identity.ts');
        view = identityView(loadIdentity({ keyFile: paths.identityKeyFile, env: ctx.io.env, create: false }));
        source = 'key file';
      }
      print(ctx, view, () => `${view.did}\n  short id ${view.short_id} (from the ${source})`);
      return EXIT.ok;
    },
  },
];
