// `outpost agent lora-enroll`: enrollment over LoRa for a device that has never had IP (the enroll token is entered
// on the device and never goes on air). The agent's LoRa uplink itself is chosen in agent.toml ([uplink] mode).

import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { OutpostError } from '../../protocol/errors.ts';
import { createLogger } from '../../protocol/log.ts';
import { AGENT_OPTIONS, loadAgentConfig } from '../agent-setup.ts';
import { buildInfo } from '../build-info.ts';
import { type Command, optString, print } from '../command.ts';
import { EXIT } from '../exit.ts';
import { readStdin } from '../io.ts';

const loraEnroll: Command = {
  path: ['agent', 'lora-enroll'],
  summary: 'enroll this device over LoRa through a gateway (token from a file or stdin; the agent must be stopped)',
  usage: '--token-file PATH|- [--config FILE] [--timeout-s N]',
  options: { ...AGENT_OPTIONS, 'token-file': { type: 'string' }, 'timeout-s': { type: 'string' } },
  async run(ctx) {
    const tokenFile = optString(ctx, 'token-file');
    if (!tokenFile) throw new OutpostError('USAGE', 'outpost agent lora-enroll --token-file PATH|-');
    const token = (
      tokenFile === '-' ? await readStdin(ctx.io) : readFileSync(resolve(ctx.io.cwd, tokenFile), 'utf8')
    ).trim();
    if (token.length === 0 || /\s/.test(token))
      throw new OutpostError('USAGE', 'the enroll token is empty or contains white space');
    const timeoutS = Number(optString(ctx, 'timeout-s') ?? '600');
    if (!(timeoutS > 0)) throw new OutpostError('USAGE', '--timeout-s must be a positive number');
    const { config, text, configFile, paths } = loadAgentConfig(ctx);
    const log = createLogger({ sink: (l) => ctx.io.stderr(`${l}\n`), level: config.agent.log_level, format: 'logfmt' });
    const [
      { enrollOverLora },
      { buildAgentManifest },
      { builtinTools },
      { createSystemInfo },
      { createRecentTelemetry },
      { loadIdentity },
      { createNativeAddonLoader },
    ] = await Promise.all([
      import('../agent-lora.ts'),
      import('../../agent/manifest-builder.ts'),
      import('../../agent/builtin-tools.ts'),
      import('../../agent/system-info.ts'),
      import('../../agent/recent-telemetry.ts'),
      import('../../agent/identity.ts'),
      import('../native-addons.ts'),
    ]);
    createNativeAddonLoader({ env: ctx.io.env }).load('serialport');
    const identity = loadIdentity({ keyFile: paths.identityKeyFile, env: ctx.io.env, create: true });
    const manifest = buildAgentManifest({
      config,
      configFile,
      configText: text,
      deviceId: identity.did,
      agentVersion: buildInfo().version,
      builtins: builtinTools({
        systemInfo: createSystemInfo({ diskPath: paths.stateDir }),
        recent: createRecentTelemetry(config.telemetry.recent_per_stream),
      }),
    });
    const r = await enrollOverLora({
      config,
      paths,
      env: ctx.io.env,
      token,
      manifestHash: Buffer.from(manifest.hash.slice('sha256:'.length), 'hex'),
      timeoutMs: timeoutS * 1000,
      log,
    });
    print(ctx, { id: r.did, tid: r.tid, manifestHash: manifest.hash }, () =>
      [`enrolled over LoRa: ${r.did}`, `  tenant ${r.tid}`, '  set [uplink] mode = "lora" and start the agent'].join(
        '\n',
      ),
    );
    return EXIT.ok;
  },
};

export const agentLoraCommands: readonly Command[] = [loraEnroll];
