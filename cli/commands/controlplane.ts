// `outpost controlplane …`: create and run the reference control plane, and the operator's commands over its HTTP
// API (enroll tokens, devices, capability changes, revocation, approvals, approver policy, caller tokens, telemetry,
// audit). Secrets come from files or the environment, never from the command line.

import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { isSea } from 'node:sea';
import type { ApprovalView } from '../../controlplane/approvals.ts';
import { type SignedAuditExport, verifyAuditExportSignature } from '../../controlplane/audit-export.ts';
import type { DeviceView } from '../../controlplane/devices.ts';
import { DEFAULT_PORT } from '../../controlplane/node/state-dir.ts';
import { systemClock } from '../../protocol/clock.ts';
import { OutpostError } from '../../protocol/errors.ts';
import { createLogger } from '../../protocol/log.ts';
import { MetricsRegistry } from '../../protocol/metrics.ts';
import type { QuorumPolicy } from '../../protocol/quorum.ts';
import { writeFileAtomic } from '../../store/atomic-file.ts';
import { buildInfo } from '../build-info.ts';
import { type Command, type CommandContext, optString, print } from '../command.ts';
import {
  CLIENT_OPTIONS,
  controlPlaneClient,
  parseDurationSeconds,
  STATE_OPTIONS,
  stateDirOf,
  when,
} from '../controlplane-setup.ts';

function listen(text: string | undefined): { host: string; port: number } {
  if (text === undefined) return { host: '127.0.0.1', port: DEFAULT_PORT };
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(text);
  if (!m || Number(m[3]) > 65_535)
    throw new OutpostError('USAGE', `--listen must be HOST:PORT, got ${JSON.stringify(text)}`);
  return { host: (m[1] ?? m[2])!, port: Number(m[3]) };
}

function stringList(ctx: CommandContext, name: string): string[] {
  const v = ctx.values[name];
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : [v]).filter((x): x is string => typeof x === 'string');
}

/** Writes a secret to a new 0600 file (never over an existing one). */
function writeSecretFile(ctx: CommandContext, file: string, text: string): string {
  const path = resolve(ctx.io.cwd, file);
  if (!writeFileAtomic(path, `${text}\n`, { mode: 0o600, overwrite: false })) {
    throw new OutpostError('CANT_CREATE', `${path} exists; choose another file`);
  }
  return path;
}

function deviceLine(d: DeviceView): string {
  const state =
    d.status === 'revoked'
      ? 'REVOKED'
      : d.online
        ? d.session?.callable
          ? 'online'
          : 'online, capabilities pending'
        : d.lora
          ? `via LoRa${d.lora.heardVia ? ` (${d.lora.heardVia.radio})` : ''}`
          : 'offline';
  const pending = d.manifest.pending ? `  pending ${d.manifest.pending.hash.slice(0, 19)}…` : '';
  return `${d.name.padEnd(20)} ${state.padEnd(30)} ${d.tools.length} tools  ${d.device}${pending}`;
}

function deviceText(d: DeviceView): string {
  const p = d.manifest.pending;
  return [
    `${d.name} (${d.device})`,
    `  tenant ${d.tid}, role ${d.role}, ${d.status}${d.revokedMs ? ` since ${when(d.revokedMs)}` : ''}`,
    `  enrolled ${when(d.enrolledMs)}, last seen ${when(d.lastSeenMs)}, ${d.online ? 'online' : d.lora ? 'reachable over LoRa' : 'offline'}`,
    `  accepted manifest ${d.manifest.accepted ?? '(none)'}`,
    ...(d.session
      ? [`  running manifest ${d.session.manifestHash}${d.session.callable ? '' : ' (not accepted: no calls)'}`]
      : []),
    ...(p
      ? [
          `  PENDING manifest ${p.hash} since ${when(p.sinceMs)}`,
          ...(p.added.length ? [`    + ${p.added.join(', ')}`] : []),
          ...(p.removed.length ? [`    - ${p.removed.join(', ')}`] : []),
          ...(p.reclassed.length ? [`    ~ ${p.reclassed.join(', ')}`] : []),
          ...(p.downgrades.length ? [`    ! class made LESS strict: ${p.downgrades.join(', ')}`] : []),
          ...(p.renamed ? ['    ! the device renames itself'] : []),
          `    accept: outpost controlplane manifest accept ${d.name} --hash ${p.hash}`,
        ]
      : []),
    `  tools: ${d.tools.map((t) => `${t.name} (${t.safetyClass})`).join(', ') || '-'}`,
    `  streams: ${d.streams.join(', ') || '-'}`,
  ].join('\n');
}

function approvalLine(a: ApprovalView): string {
  return `${a.requestId}  ${a.status.padEnd(8)} ${a.approvers.length}/${a.needed}  ${a.deviceName}.${a.tool} ${JSON.stringify(a.args)}  by ${a.requester}, expires ${when(a.expMs)}`;
}

function policyText(p: { policy: QuorumPolicy | null; version: number }): string {
  if (!p.policy)
    return 'no approval policy yet: add approvers with `outpost controlplane policy add-approver ID --public-key=KEY`';
  return [
    `approval policy v${p.version} of tenant ${p.policy.tid}`,
    '  approvers:',
    ...p.policy.approvers.map((a) => `    ${a.id}  ${a.publicKey}`),
    '  rules (physical_actuation always needs at least 2):',
    ...(p.policy.rules.length
      ? p.policy.rules.map((r) => `    ${'tool' in r ? `tool ${r.tool}` : `class ${r.safetyClass}`}: k=${r.k}`)
      : ['    (none)']),
  ].join('\n');
}

async function editPolicy(
  ctx: CommandContext,
  change: (p: { approvers: QuorumPolicy['approvers']; rules: QuorumPolicy['rules'] }) => void,
): Promise<number> {
  const client = controlPlaneClient(ctx);
  const current = await client.request<{ policy: QuorumPolicy | null; version: number }>('GET', '/v1/operator/policy');
  const draft = {
    approvers: [...(current.policy?.approvers ?? [])],
    rules: [...(current.policy?.rules ?? [])],
  };
  change(draft);
  const next = await client.request<{ policy: QuorumPolicy; version: number }>('PUT', '/v1/operator/policy', {
    ...draft,
    ifVersion: current.version,
  });
  print(ctx, next, () => policyText(next));
  return 0;
}

function ruleOf(ctx: CommandContext):
  | { tool: string }
  | {
      safetyClass: QuorumPolicy['rules'][number] extends infer R
        ? R extends { safetyClass: infer C }
          ? C
          : never
        : never;
    } {
  const tool = optString(ctx, 'tool');
  const cls = optString(ctx, 'class');
  if ((tool === undefined) === (cls === undefined))
    throw new OutpostError('USAGE', 'give exactly one of --tool PATTERN or --class CLASS');
  if (tool !== undefined) return { tool };
  if (cls !== 'read_only' && cls !== 'reversible' && cls !== 'physical_actuation') {
    throw new OutpostError('USAGE', '--class is read_only, reversible or physical_actuation');
  }
  return { safetyClass: cls };
}

export const controlplaneCommands: Command[] = [
  {
    path: ['controlplane', 'init'],
    summary: 'create a control plane: keys, database, the first tenant and its operator key (printed once)',
    usage: '[--state-dir DIR] [--listen HOST:PORT] [--public-url URL] [--tenant NAME] [--hybrid]',
    options: {
      ...STATE_OPTIONS,
      listen: { type: 'string' },
      'public-url': { type: 'string' },
      tenant: { type: 'string' },
      hybrid: { type: 'boolean' },
    },
    async run(ctx) {
      const [{ initStateDir }, { sqliteBindingFor }] = await Promise.all([
        import('../../controlplane/node/state-dir.ts'),
        import('../native-addons.ts'),
      ]);
      const dir = stateDirOf(ctx);
      const nativeBinding = sqliteBindingFor(ctx.io.env);
      const l = listen(optString(ctx, 'listen'));
      const log = createLogger({ sink: (line) => ctx.io.stderr(`${line}\n`), level: 'warning' });
      const r = await initStateDir({
        dir,
        env: ctx.io.env,
        clock: systemClock,
        log,
        listenHost: l.host,
        listenPort: l.port,
        tenant: optString(ctx, 'tenant') ?? 'default',
        hybridTokens: ctx.values.hybrid === true,
        ...(optString(ctx, 'public-url') ? { publicUrl: optString(ctx, 'public-url')! } : {}),
        ...(nativeBinding ? { nativeBinding } : {}),
      });
      const t = r.created.tenant;
      print(
        ctx,
        {
          stateDir: dir,
          publicUrl: r.config.publicUrl,
          tenant: t,
          operatorKey: r.created.operatorKey,
          operatorKeyFile: r.operatorKeyFile,
          identity: r.identityDid,
        },
        () =>
          [
            `control plane created in ${dir}`,
            `  public URL  ${r.config.publicUrl} (listens on ${r.config.listen.host}:${r.config.listen.port})`,
            `  tenant      ${t.name}  ${t.tid}  (${t.did})`,
            `  identity    ${r.identityDid}`,
            '',
            'Operator key (shown once; also saved, 0600, in the file below):',
            `  ${r.created.operatorKey}`,
            `  ${r.operatorKeyFile}`,
            '',
            'Next:',
            `  outpost controlplane run --state-dir ${dir}`,
            `  outpost controlplane enroll-token --state-dir ${dir} --out enroll.token`,
          ].join('\n'),
      );
      return 0;
    },
  },
  {
    path: ['controlplane', 'run'],
    summary: 'run the control plane (HTTP API, MCP gateway and WSS hub on one port) in the foreground',
    usage: '[--state-dir DIR] [--listen HOST:PORT] [--tls-cert FILE --tls-key FILE] [--log-level LEVEL]',
    options: {
      ...STATE_OPTIONS,
      listen: { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'log-level': { type: 'string' },
    },
    async run(ctx) {
      const [{ startControlPlaneHost }, { createSdNotifier }, { createNativeAddonLoader }] = await Promise.all([
        import('../../controlplane/node/host.ts'),
        import('../sd-notify.ts'),
        import('../native-addons.ts'),
      ]);
      const env = ctx.io.env;
      const level = optString(ctx, 'log-level') ?? 'info';
      if (!['debug', 'info', 'notice', 'warning', 'error'].includes(level))
        throw new OutpostError('USAGE', 'bad --log-level');
      const log = createLogger({
        sink: (line) => ctx.io.stderr(`${line}\n`),
        level: level as 'info',
        format: env.JOURNAL_STREAM ? 'journald' : 'logfmt',
        clock: systemClock,
      });
      const cert = optString(ctx, 'tls-cert');
      const key = optString(ctx, 'tls-key');
      if ((cert === undefined) !== (key === undefined))
        throw new OutpostError('USAGE', 'give both --tls-cert and --tls-key');
      const l = optString(ctx, 'listen') ? listen(optString(ctx, 'listen')) : undefined;
      const nativeBinding = isSea() ? createNativeAddonLoader({ env }).load('better-sqlite3') : undefined;
      const host = await startControlPlaneHost({
        dir: stateDirOf(ctx),
        env,
        clock: systemClock,
        log,
        metrics: new MetricsRegistry(),
        version: buildInfo().version,
        ...(l ? { host: l.host, port: l.port } : {}),
        ...(cert && key ? { tls: { certFile: resolve(ctx.io.cwd, cert), keyFile: resolve(ctx.io.cwd, key) } } : {}),
        ...(nativeBinding ? { nativeBinding } : {}),
      });
      const notifier = createSdNotifier({ env, log });
      await notifier.ready(`serving ${host.url}`);
      const stopWatchdog = notifier.startWatchdog();
      ctx.io.stderr(`outpost control plane serving ${host.url} (public URL ${host.state.settings.publicUrl})\n`);
      await new Promise<void>((done) => {
        if (ctx.io.stopSignal.aborted) done();
        else ctx.io.stopSignal.addEventListener('abort', () => done(), { once: true });
      });
      stopWatchdog();
      await notifier.stopping();
      await host.close();
      return 0;
    },
  },
  {
    path: ['controlplane', 'enroll-token'],
    summary: 'mint a single-use, expiring enroll token for a device (printed once, or written 0600 with --out)',
    usage: '[--ttl 1h] [--role device|gateway] [--label KEY=VALUE]… [--hold-manifest] [--manifest FILE] [--out FILE]',
    options: {
      ...CLIENT_OPTIONS,
      ttl: { type: 'string' },
      role: { type: 'string' },
      label: { type: 'string', multiple: true },
      'hold-manifest': { type: 'boolean' },
      // The device's manifest (`outpost agent manifest` on it): the token then also enrolls it over LoRa.
      manifest: { type: 'string' },
      out: { type: 'string' },
    },
    async run(ctx) {
      const labels: Record<string, string> = {};
      for (const l of stringList(ctx, 'label')) {
        const i = l.indexOf('=');
        if (i < 1) throw new OutpostError('USAGE', `--label needs KEY=VALUE, got ${JSON.stringify(l)}`);
        labels[l.slice(0, i)] = l.slice(i + 1);
      }
      const role = optString(ctx, 'role');
      if (role !== undefined && role !== 'device' && role !== 'gateway')
        throw new OutpostError('USAGE', '--role is device or gateway');
      const manifestFile = optString(ctx, 'manifest');
      let manifest: unknown;
      if (manifestFile) {
        try {
          manifest = JSON.parse(readFileSync(resolve(ctx.io.cwd, manifestFile), 'utf8'));
        } catch (e) {
          throw new OutpostError('USAGE', `--manifest ${manifestFile}: ${(e as Error).message}`);
        }
      }
      const client = controlPlaneClient(ctx);
      const r = await client.request<{
        token: string;
        tokenId: string;
        expiresAtMs: number;
        tid: string;
        role: string;
        lora?: { manifestHash: string; device: string };
      }>('POST', '/v1/operator/enroll-token', {
        ...(manifest ? { manifest } : {}),
        ...(optString(ctx, 'ttl') ? { ttlSeconds: parseDurationSeconds(optString(ctx, 'ttl')!) } : {}),
        ...(role ? { role } : {}),
        ...(Object.keys(labels).length ? { labels } : {}),
        ...(ctx.values['hold-manifest'] === true ? { holdManifest: true } : {}),
      });
      const out = optString(ctx, 'out');
      const file = out ? writeSecretFile(ctx, out, r.token) : undefined;
      print(ctx, file ? { ...r, token: undefined, tokenFile: file } : r, () =>
        file
          ? `enroll token ${r.tokenId} (${r.role}) written to ${file}; expires ${when(r.expiresAtMs)}\n  on the device: outpost enroll --url ${client.url} --token-file ${out}${r.lora ? `\n  or over LoRa (manifest ${r.lora.manifestHash} registered): outpost agent lora-enroll --token-file ${out}` : ''}`
          : `${r.token}\n(enroll token ${r.tokenId}, ${r.role}, expires ${when(r.expiresAtMs)}; single use)`,
      );
      return 0;
    },
  },
  {
    path: ['controlplane', 'devices'],
    summary: 'list the tenant’s devices: online, capabilities pending, revoked',
    usage: '',
    options: CLIENT_OPTIONS,
    async run(ctx) {
      const r = await controlPlaneClient(ctx).request<{ devices: DeviceView[] }>('GET', '/v1/operator/devices');
      print(ctx, r, () =>
        r.devices.length ? r.devices.map(deviceLine).join('\n') : 'no devices yet (mint an enroll token)',
      );
      return 0;
    },
  },
  {
    path: ['controlplane', 'device', 'show'],
    summary: 'show one device (by name or did:key), with what a pending manifest would change',
    usage: 'DEVICE',
    options: CLIENT_OPTIONS,
    async run(ctx) {
      const ref = ctx.positionals[0];
      if (!ref) throw new OutpostError('USAGE', 'name the device');
      const d = await controlPlaneClient(ctx).request<DeviceView>(
        'GET',
        `/v1/operator/devices/${encodeURIComponent(ref)}`,
      );
      print(ctx, d, () => deviceText(d));
      return 0;
    },
  },
  {
    path: ['controlplane', 'manifest', 'accept'],
    summary: 'accept a device’s pending capability change (its new manifest)',
    usage: 'DEVICE [--hash sha256:…]',
    options: { ...CLIENT_OPTIONS, hash: { type: 'string' } },
    async run(ctx) {
      const ref = ctx.positionals[0];
      if (!ref) throw new OutpostError('USAGE', 'name the device');
      const client = controlPlaneClient(ctx);
      let hash = optString(ctx, 'hash');
      if (!hash) {
        const d = await client.request<DeviceView>('GET', `/v1/operator/devices/${encodeURIComponent(ref)}`);
        if (!d.manifest.pending) throw new OutpostError('NO_PENDING_MANIFEST', `${d.name} has no pending manifest`);
        hash = d.manifest.pending.hash;
      }
      const d = await client.request<DeviceView>(
        'POST',
        `/v1/operator/devices/${encodeURIComponent(ref)}/manifest/accept`,
        {
          manifestHash: hash,
        },
      );
      print(ctx, d, () => `accepted ${hash} for ${d.name}\n${deviceText(d)}`);
      return 0;
    },
  },
  {
    path: ['controlplane', 'revoke'],
    summary: 'revoke a device: its session closes, its tokens and re-enrollment are refused, gateways are told',
    usage: 'DEVICE [--reason TEXT]',
    options: { ...CLIENT_OPTIONS, reason: { type: 'string' } },
    async run(ctx) {
      const ref = ctx.positionals[0];
      if (!ref) throw new OutpostError('USAGE', 'name the device');
      const r = await controlPlaneClient(ctx).request<{ device: DeviceView; revocation: { seq: number } | null }>(
        'POST',
        `/v1/operator/devices/${encodeURIComponent(ref)}/revoke`,
        optString(ctx, 'reason') ? { reason: optString(ctx, 'reason') } : {},
      );
      print(
        ctx,
        r,
        () => `${r.device.name} revoked${r.revocation ? ` (revocation #${r.revocation.seq})` : ' (already)'}`,
      );
      return 0;
    },
  },
  {
    path: ['controlplane', 'approvals'],
    summary: 'list approval requests (pending ones first need `outpost approve`)',
    usage: '[--status pending|approved|used|expired]',
    options: { ...CLIENT_OPTIONS, status: { type: 'string' } },
    async run(ctx) {
      const status = optString(ctx, 'status');
      const r = await controlPlaneClient(ctx).request<{ approvals: ApprovalView[] }>(
        'GET',
        `/v1/approvals${status ? `?status=${encodeURIComponent(status)}` : ''}`,
      );
      print(ctx, r, () => (r.approvals.length ? r.approvals.map(approvalLine).join('\n') : 'no approval requests'));
      return 0;
    },
  },
  {
    path: ['controlplane', 'policy', 'show'],
    summary: 'show the tenant’s approval policy (approvers and k per tool or class)',
    usage: '',
    options: CLIENT_OPTIONS,
    async run(ctx) {
      const r = await controlPlaneClient(ctx).request<{ policy: QuorumPolicy | null; version: number }>(
        'GET',
        '/v1/operator/policy',
      );
      print(ctx, r, () => policyText(r));
      return 0;
    },
  },
  {
    path: ['controlplane', 'policy', 'add-approver'],
    summary: 'add an approver by the public key it printed (`outpost approver keygen`)',
    usage: 'ID --public-key=KEY',
    options: { ...CLIENT_OPTIONS, 'public-key': { type: 'string' } },
    async run(ctx) {
      const id = ctx.positionals[0];
      const publicKey = optString(ctx, 'public-key');
      if (!id || !publicKey) throw new OutpostError('USAGE', 'give the approver id and --public-key');
      if (!/^[A-Za-z0-9_-]{43}$/.test(publicKey)) {
        throw new OutpostError('USAGE', '--public-key is the 43-character key `outpost approver keygen` printed');
      }
      return editPolicy(ctx, (p) => {
        p.approvers = [...p.approvers.filter((a) => a.id !== id), { id, publicKey }];
      });
    },
  },
  {
    path: ['controlplane', 'policy', 'remove-approver'],
    summary: 'remove an approver',
    usage: 'ID',
    options: CLIENT_OPTIONS,
    async run(ctx) {
      const id = ctx.positionals[0];
      if (!id) throw new OutpostError('USAGE', 'give the approver id');
      return editPolicy(ctx, (p) => {
        p.approvers = p.approvers.filter((a) => a.id !== id);
      });
    },
  },
  {
    path: ['controlplane', 'policy', 'set-rule'],
    summary: 'require k approvals for a tool pattern or a safety class',
    usage: '(--tool PATTERN | --class CLASS) --k N',
    options: { ...CLIENT_OPTIONS, tool: { type: 'string' }, class: { type: 'string' }, k: { type: 'string' } },
    async run(ctx) {
      const rule = ruleOf(ctx);
      const k = Number(optString(ctx, 'k'));
      if (!Number.isInteger(k) || k < 1 || k > 16) throw new OutpostError('USAGE', '--k is 1..16');
      return editPolicy(ctx, (p) => {
        const same = (r: QuorumPolicy['rules'][number]) =>
          'tool' in rule
            ? 'tool' in r && r.tool === rule.tool
            : 'safetyClass' in r && r.safetyClass === rule.safetyClass;
        p.rules = [...p.rules.filter((r) => !same(r)), { ...rule, k } as QuorumPolicy['rules'][number]];
      });
    },
  },
  {
    path: ['controlplane', 'policy', 'remove-rule'],
    summary: 'remove the rule for a tool pattern or a safety class',
    usage: '(--tool PATTERN | --class CLASS)',
    options: { ...CLIENT_OPTIONS, tool: { type: 'string' }, class: { type: 'string' } },
    async run(ctx) {
      const rule = ruleOf(ctx);
      return editPolicy(ctx, (p) => {
        p.rules = p.rules.filter((r) =>
          'tool' in rule
            ? !('tool' in r && r.tool === rule.tool)
            : !('safetyClass' in r && r.safetyClass === rule.safetyClass),
        );
      });
    },
  },
  {
    path: ['controlplane', 'token', 'mint'],
    summary: 'mint a caller token (MCP clients, approvers, admins) for the tenant',
    usage: '--role viewer|operator|actuator|approver|admin --subject NAME [--scope SCOPE]… [--ttl 1h] [--out FILE]',
    options: {
      ...CLIENT_OPTIONS,
      role: { type: 'string' },
      subject: { type: 'string' },
      scope: { type: 'string', multiple: true },
      ttl: { type: 'string' },
      out: { type: 'string' },
    },
    async run(ctx) {
      const role = optString(ctx, 'role');
      const subject = optString(ctx, 'subject');
      if (!role || !subject) throw new OutpostError('USAGE', 'give --role and --subject');
      const scopes = stringList(ctx, 'scope');
      const r = await controlPlaneClient(ctx).request<{
        token: string;
        jti: string;
        scopes: string[];
        expiresAtMs: number;
      }>('POST', '/v1/operator/tokens', {
        role,
        subject,
        ...(scopes.length ? { scopes } : {}),
        ...(optString(ctx, 'ttl') ? { ttlSeconds: parseDurationSeconds(optString(ctx, 'ttl')!) } : {}),
      });
      const out = optString(ctx, 'out');
      const file = out ? writeSecretFile(ctx, out, r.token) : undefined;
      print(ctx, file ? { ...r, token: undefined, tokenFile: file } : r, () =>
        file
          ? `token ${r.jti} for ${subject} (${role}) written to ${file}; expires ${when(r.expiresAtMs)}\n  scopes: ${r.scopes.join(' ')}`
          : r.token,
      );
      return 0;
    },
  },
  {
    path: ['controlplane', 'token', 'revoke'],
    summary: 'revoke a token by its id (jti); devices are told',
    usage: '[--reason TEXT] -- JTI',
    options: { ...CLIENT_OPTIONS, reason: { type: 'string' } },
    async run(ctx) {
      const jti = ctx.positionals[0];
      if (!jti) throw new OutpostError('USAGE', 'give the token id (jti)');
      const r = await controlPlaneClient(ctx).request<{ seq: number; untilMs: number }>(
        'POST',
        '/v1/operator/tokens/revoke',
        {
          jti,
          ...(optString(ctx, 'reason') ? { reason: optString(ctx, 'reason') } : {}),
        },
      );
      print(ctx, r, () => `token ${jti} refused until ${when(r.untilMs)}`);
      return 0;
    },
  },
  {
    path: ['controlplane', 'telemetry'],
    summary: 'show stored telemetry (each device record exactly once)',
    usage: '[--device DEVICE] [--stream NAME] [--after SEQ] [--limit N]',
    options: {
      ...CLIENT_OPTIONS,
      device: { type: 'string' },
      stream: { type: 'string' },
      after: { type: 'string' },
      limit: { type: 'string' },
    },
    async run(ctx) {
      const q = new URLSearchParams();
      for (const k of ['device', 'stream', 'after', 'limit']) if (optString(ctx, k)) q.set(k, optString(ctx, k)!);
      const r = await controlPlaneClient(ctx).request<{
        records: { device: string; seq: number; stream: string; ts: number; value: unknown; misfit: boolean }[];
        total: number;
      }>('GET', `/v1/operator/telemetry?${q}`);
      print(ctx, r, () =>
        [
          ...r.records.map(
            (x) =>
              `${x.device.slice(-8)} #${x.seq} ${when(x.ts)} ${x.stream} = ${JSON.stringify(x.value)}${x.misfit ? ' (misfit)' : ''}`,
          ),
          `${r.records.length} shown of ${r.total} stored${optString(ctx, 'device') || optString(ctx, 'stream') ? ' (matching)' : ''}`,
        ].join('\n'),
      );
      return 0;
    },
  },
  {
    path: ['controlplane', 'audit', 'export'],
    summary: 'export the control plane’s audit chain as signed JSON (root operator key)',
    usage: '[--out FILE]',
    options: { ...CLIENT_OPTIONS, out: { type: 'string' } },
    async run(ctx) {
      const r = await controlPlaneClient(ctx).request<SignedAuditExport>('GET', '/v1/operator/audit/export');
      const out = optString(ctx, 'out');
      const text = `${JSON.stringify(r, null, 2)}\n`;
      if (out) {
        const path = resolve(ctx.io.cwd, out);
        writeFileAtomic(path, text, { mode: 0o600 });
        if (!ctx.json)
          ctx.io.stdout(
            `${r.lines.length} lines, head #${r.headSeq}, chain ${r.chainVerified ? 'verified' : 'BROKEN'}, signed by ${r.signer}: ${path}\n`,
          );
        else print(ctx, { file: path, headSeq: r.headSeq, chainVerified: r.chainVerified, signer: r.signer }, () => '');
      } else {
        ctx.io.stdout(text);
      }
      return r.chainVerified ? 0 : 65;
    },
  },
  {
    path: ['controlplane', 'audit', 'verify'],
    summary: 'check the signature of an audit export (optionally that it is by --signer did:key)',
    usage: 'FILE [--signer DID]',
    options: { signer: { type: 'string' } },
    async run(ctx) {
      const file = ctx.positionals[0];
      if (!file) throw new OutpostError('USAGE', 'name the export file');
      let doc: SignedAuditExport;
      try {
        doc = JSON.parse(readFileSync(resolve(ctx.io.cwd, file), 'utf8')) as SignedAuditExport;
      } catch (e) {
        throw new OutpostError('NO_INPUT', `cannot read ${file}: ${(e as Error).message}`);
      }
      const ok = verifyAuditExportSignature(doc, optString(ctx, 'signer'));
      print(ctx, { ok, signer: doc.signer, headSeq: doc.headSeq, chainVerified: doc.chainVerified }, () =>
        ok ? `signature valid (${doc.signer}); ${doc.lines.length} lines, head #${doc.headSeq}` : 'signature INVALID',
      );
      return ok ? 0 : 65;
    },
  },
  {
    path: ['controlplane', 'tenant', 'create'],
    summary: 'create another tenant (root operator key); its operator key is written 0600 to --out',
    usage: 'NAME --out FILE',
    options: { ...CLIENT_OPTIONS, out: { type: 'string' } },
    async run(ctx) {
      const name = ctx.positionals[0];
      const out = optString(ctx, 'out');
      if (!name || !out) throw new OutpostError('USAGE', 'give the tenant name and --out FILE for its operator key');
      const r = await controlPlaneClient(ctx).request<{
        tenant: { tid: string; did: string; name: string };
        operatorKey: string;
      }>('POST', '/v1/operator/tenants', { name });
      const file = writeSecretFile(ctx, out, r.operatorKey);
      print(
        ctx,
        { tenant: r.tenant, operatorKeyFile: file },
        () => `tenant ${r.tenant.name} ${r.tenant.tid} (${r.tenant.did}); operator key in ${file}`,
      );
      return 0;
    },
  },
  {
    path: ['controlplane', 'keys', 'rotate'],
    summary: 'make a new token signing key active now; the old one keeps verifying through the overlap',
    usage: '',
    options: CLIENT_OPTIONS,
    async run(ctx) {
      const r = await controlPlaneClient(ctx).request<{
        steps: unknown[];
        jwks: { keys: { kid: string; status: string }[] };
      }>('POST', '/v1/operator/keys/rotate', {});
      print(ctx, r, () => r.jwks.keys.map((k) => `${k.kid}  ${k.status}`).join('\n'));
      return 0;
    },
  },
];
