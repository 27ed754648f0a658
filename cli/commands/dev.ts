// `outpost dev trust init|token|approve`: a local issuer and approvers for tests and off-grid sites without a
// control plane. Test tooling: in production the control plane issues tokens and each approver signs with a
// key only they hold (docs/agent.md "Trust bundle").

import { resolve } from 'node:path';
import type { IdentityView } from '../../agent/api-types.ts';
import { systemClock } from '../../protocol/clock.ts';
import { isOutpostError, OutpostError } from '../../protocol/errors.ts';
import { ROLES, type Role } from '../../protocol/roles.ts';
import { AGENT_OPTIONS, agentClient, toolArgs } from '../agent-setup.ts';
import { type Command, type CommandContext, optString, print } from '../command.ts';
import { EXIT } from '../exit.ts';

/** The dev tools (jose, quorum signing) load only when a dev command runs. */
async function devTrust() {
  const m = await import('../../agent/dev-trust.ts');
  return { ...m, keyStore: m.fileDevKeyStore() };
}

function trustDir(ctx: CommandContext): string {
  const dir = optString(ctx, 'dir');
  if (!dir) throw new OutpostError('USAGE', 'missing --dir DIR (the dev trust directory)');
  return resolve(ctx.io.cwd, dir);
}

/** The device a token or approval is for: --device, else the running agent's did:key. */
async function targetDevice(ctx: CommandContext): Promise<string> {
  const flag = optString(ctx, 'device');
  if (flag) return flag;
  try {
    return (await agentClient(ctx).get<IdentityView>('/v1/identity')).did;
  } catch (e) {
    if (isOutpostError(e, 'DAEMON_DOWN')) {
      throw new OutpostError(
        'USAGE',
        'no running agent to ask for its did:key: pass --device DID (or "*" for a token)',
      );
    }
    throw e;
  }
}

function ttl(ctx: CommandContext, fallbackS: number): number {
  const v = optString(ctx, 'ttl');
  const n = v === undefined ? fallbackS : Number(v);
  if (!Number.isSafeInteger(n) || n < 1) throw new OutpostError('USAGE', '--ttl must be a whole number of seconds');
  return n;
}

function list(ctx: CommandContext, name: string): string[] | undefined {
  const v = ctx.values[name];
  if (v === undefined) return undefined;
  return (Array.isArray(v) ? v : [v]).flatMap((x) => String(x).split(',')).filter((x) => x !== '');
}

export const devCommands: Command[] = [
  {
    path: ['dev', 'trust', 'init'],
    summary: 'create a local token issuer and approver keys (tests and off-grid sites) and print the [trust] table',
    usage: '--dir DIR [--approvers alice,bob,carol] [--k 2]',
    options: { dir: { type: 'string' }, approvers: { type: 'string' }, k: { type: 'string' } },
    async run(ctx) {
      const dir = trustDir(ctx);
      const approvers = list(ctx, 'approvers') ?? ['alice', 'bob', 'carol'];
      const k = Number(optString(ctx, 'k') ?? '2');
      const { initDevTrust, keyStore } = await devTrust();
      const r = initDevTrust(keyStore, { dir, approvers, k });
      const toml = [
        '[trust]',
        `issuer = "${r.issuer}"`,
        `jwks = "${resolve(dir, 'jwks.json')}"`,
        `approval_policy = "${resolve(dir, 'approval-policy.json')}"`,
      ].join('\n');
      print(ctx, { ...r, toml }, () =>
        [
          `created a dev trust bundle in ${dir} for tenant ${r.tenantId}`,
          `  issuer key: ${dir}/issuer.key (0600); approvers: ${r.approvers.join(', ')} (keys in ${dir}/approvers/, 0600)`,
          `  physical_actuation needs ${r.k} of ${r.approvers.length} approvals`,
          '',
          'Add this to the agent config and restart the agent:',
          '',
          toml,
          '',
          'These keys are for tests and off-grid sites: whoever holds this directory can mint tokens and approvals.',
        ].join('\n'),
      );
      return EXIT.ok;
    },
  },
  {
    path: ['dev', 'token'],
    summary: 'mint a single-use runtime token from the dev issuer (prints the token: pipe it to --token-file -)',
    usage: '--dir DIR [--device DID|*] [--role ROLE] [--tool PATTERN]… [--ttl SECONDS] [--subject NAME]',
    options: {
      ...AGENT_OPTIONS,
      dir: { type: 'string' },
      device: { type: 'string' },
      role: { type: 'string' },
      tool: { type: 'string', multiple: true },
      ttl: { type: 'string' },
      subject: { type: 'string' },
      audience: { type: 'string' },
    },
    async run(ctx) {
      const role = (optString(ctx, 'role') ?? 'actuator') as Role;
      if (!(ROLES as readonly string[]).includes(role)) {
        throw new OutpostError('USAGE', `--role must be one of ${ROLES.join(', ')}`);
      }
      const { mintDevToken, keyStore, DEFAULT_AUDIENCE } = await devTrust();
      const token = await mintDevToken(keyStore, {
        dir: trustDir(ctx),
        device: await targetDevice(ctx),
        role,
        tools: list(ctx, 'tool') ?? ['*'],
        ttlS: ttl(ctx, 300),
        subject: optString(ctx, 'subject') ?? 'dev:operator',
        audience: optString(ctx, 'audience') ?? DEFAULT_AUDIENCE,
        clock: systemClock,
      });
      print(ctx, { token }, () => token);
      return EXIT.ok;
    },
  },
  {
    path: ['dev', 'approve'],
    summary: 'sign a quorum token approving one exact tool call (prints it: pipe it to --quorum-file -)',
    usage: '--dir DIR --tool TOOL [KEY=VALUE…] [--args JSON] [--approver NAME]… [--device DID] [--ttl SECONDS]',
    options: {
      ...AGENT_OPTIONS,
      dir: { type: 'string' },
      tool: { type: 'string' },
      args: { type: 'string' },
      approver: { type: 'string', multiple: true },
      device: { type: 'string' },
      ttl: { type: 'string' },
    },
    async run(ctx) {
      const tool = optString(ctx, 'tool');
      if (!tool) throw new OutpostError('USAGE', 'missing --tool TOOL');
      const approvers = list(ctx, 'approver');
      const { devApprove, keyStore } = await devTrust();
      const { token, request } = devApprove(keyStore, {
        dir: trustDir(ctx),
        device: await targetDevice(ctx),
        tool,
        args: toolArgs(ctx, ctx.positionals),
        ...(approvers ? { approvers } : {}),
        ttlS: ttl(ctx, 600),
        clock: systemClock,
      });
      print(ctx, { quorum: token, request }, () => token);
      return EXIT.ok;
    },
  },
];
