// `outpost agent lora-enroll`: enrollment over LoRa for a device that has never had IP (the enroll token is entered
// on the device and never goes on air). The agent's LoRa uplink itself is chosen in agent.toml ([uplink] mode).

import { readFileSync, writeFileSync } from 'node:fs';
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
    const [{ enrollOverLora }, { createNativeAddonLoader }] = await Promise.all([
      import('../agent-lora.ts'),
      import('../native-addons.ts'),
    ]);
    createNativeAddonLoader({ env: ctx.io.env }).load('serialport');
    const manifest = await ownManifest(ctx, { config, text, configFile, paths });
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

/** The manifest this agent announces, with its identity (created on first use, as the daemon would). */
async function ownManifest(
  ctx: Parameters<Command['run']>[0],
  c: Pick<ReturnType<typeof loadAgentConfig>, 'config' | 'text' | 'configFile' | 'paths'>,
) {
  const [{ buildAgentManifest }, { builtinTools }, { createSystemInfo }, { createRecentTelemetry }, { loadIdentity }] =
    await Promise.all([
      import('../../agent/manifest-builder.ts'),
      import('../../agent/builtin-tools.ts'),
      import('../../agent/system-info.ts'),
      import('../../agent/recent-telemetry.ts'),
      import('../../agent/identity.ts'),
    ]);
  const identity = loadIdentity({ keyFile: c.paths.identityKeyFile, env: ctx.io.env, create: true });
  return buildAgentManifest({
    config: c.config,
    configFile: c.configFile,
    configText: c.text,
    deviceId: identity.did,
    agentVersion: buildInfo().version,
    builtins: builtinTools({
      systemInfo: createSystemInfo({ diskPath: c.paths.stateDir }),
      recent: createRecentTelemetry(c.config.telemetry.recent_per_stream),
    }),
  });
}

const manifestCommand: Command = {
  path: ['agent', 'manifest'],
  summary:
    'print the CapabilityManifest this agent announces (creating its identity if new), e.g. to register it with an enroll token for LoRa',
  usage: '[--config FILE] [--out FILE]',
  options: { ...AGENT_OPTIONS, out: { type: 'string' } },
  async run(ctx) {
    const loaded = loadAgentConfig(ctx);
    const m = await ownManifest(ctx, loaded);
    const out = optString(ctx, 'out');
    const text = `${JSON.stringify(m.manifest, null, 2)}\n`;
    if (out) {
      writeFileSync(resolve(ctx.io.cwd, out), text);
      print(ctx, { file: resolve(ctx.io.cwd, out), device: m.manifest.device.id, hash: m.hash }, () =>
        [
          `manifest of ${m.manifest.device.id} written to ${out} (${m.hash})`,
          `  on the control plane: outpost controlplane enroll-token --manifest ${out} --out token.txt`,
        ].join('\n'),
      );
    } else ctx.io.stdout(text);
    return EXIT.ok;
  },
};

export const agentLoraCommands: readonly Command[] = [loraEnroll, manifestCommand];
