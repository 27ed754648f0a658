// `outpost enroll --url URL --token-file FILE|-`: enrolls this device with a control plane (the token from a file or
// stdin, never from argv) and leaves the enrollment in the agent's state directory; `outpost agent run` then
// connects. An enrolled device refuses to enroll again unless --force says to replace the enrollment.

import { mkdirSync } from 'node:fs';
import { systemClock } from '../../protocol/clock.ts';
import { OutpostError } from '../../protocol/errors.ts';
import { AGENT_OPTIONS, loadAgentConfig, readSecretFile } from '../agent-setup.ts';
import { buildInfo } from '../build-info.ts';
import { type Command, optString, print } from '../command.ts';

export const enrollCommands: Command[] = [
  {
    path: ['enroll'],
    summary: 'enroll this device with a control plane (token from a file or - for stdin)',
    usage: '--url URL --token-file FILE|- [--force] [--config FILE]',
    options: {
      ...AGENT_OPTIONS,
      url: { type: 'string' },
      'token-file': { type: 'string' },
      force: { type: 'boolean' },
    },
    async run(ctx) {
      const url = optString(ctx, 'url');
      if (!url || !/^https?:\/\/[^\s]+$/.test(url))
        throw new OutpostError('USAGE', 'give --url http(s)://control-plane');
      const token = await readSecretFile(ctx, 'token-file');
      if (!token) throw new OutpostError('USAGE', 'give --token-file FILE (or - to read it from stdin)');
      const { config, text, paths } = loadAgentConfig(ctx);
      const [
        { loadIdentity },
        { buildAgentManifest },
        { builtinTools },
        { createSystemInfo },
        { createRecentTelemetry },
        { enroll },
      ] = await Promise.all([
        import('../../agent/identity.ts'),
        import('../../agent/manifest-builder.ts'),
        import('../../agent/builtin-tools.ts'),
        import('../../agent/system-info.ts'),
        import('../../agent/recent-telemetry.ts'),
        import('../../agent/enrollment.ts'),
      ]);
      mkdirSync(paths.stateDir, { recursive: true, mode: 0o700 });
      const identity = loadIdentity({ keyFile: paths.identityKeyFile, env: ctx.io.env, create: true });
      const built = buildAgentManifest({
        config,
        configFile: paths.configFile,
        configText: text,
        deviceId: identity.did,
        agentVersion: buildInfo().version,
        builtins: builtinTools({
          systemInfo: createSystemInfo({ diskPath: paths.stateDir }),
          recent: createRecentTelemetry(config.telemetry.recent_per_stream),
        }),
      });
      const r = await enroll({
        url,
        token,
        stateDir: paths.stateDir,
        identity,
        manifest: built.manifest,
        replace: ctx.values.force === true,
        nowMs: systemClock.nowMs(),
      });
      const e = r.enrollment;
      print(
        ctx,
        {
          device: e.device,
          tid: e.tid,
          tenant: e.tenantDid,
          url: e.url,
          manifest: { hash: e.manifestHash, status: r.manifestStatus },
          stateDir: paths.stateDir,
        },
        () =>
          [
            `enrolled ${config.agent.name} (${e.device})`,
            `  tenant ${e.tid} (${e.tenantDid}) at ${e.url}`,
            `  manifest ${e.manifestHash}: ${r.manifestStatus === 'accepted' ? 'accepted' : 'held until an operator accepts it'}`,
            `  state in ${paths.stateDir}; start (or restart) the agent to connect: outpost agent run`,
          ].join('\n'),
      );
      return 0;
    },
  },
];
