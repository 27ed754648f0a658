// `outpost radio sim|probe|send|listen`: emulated radios on a shared simulated air, and hands-on tools for any
// radio on a serial path (real or emulated): identify it, send bytes, watch what it hears. The work is in
// cli/radio-tools.ts, loaded only when one of these runs.

import type { Command } from '../command.ts';

const tools = () => import('../radio-tools.ts');

const RNODE_OPTIONS = {
  kind: { type: 'string' },
  region: { type: 'string' },
  'frequency-hz': { type: 'string' },
  'bandwidth-hz': { type: 'string' },
  sf: { type: 'string' },
  cr: { type: 'string' },
  'tx-power-dbm': { type: 'string' },
  verbose: { type: 'boolean' },
} as const;

const sim: Command = {
  path: ['radio', 'sim'],
  summary: 'run emulated RNode/Meshtastic radios on one simulated air; prints their device paths',
  usage:
    '[--rnode N] [--meshtastic N] [--loss 0..1] [--time-scale X] [--region EU868|US915|ANY] [--dir DIR] [--seed N]',
  options: {
    rnode: { type: 'string' },
    meshtastic: { type: 'string' },
    loss: { type: 'string' },
    'time-scale': { type: 'string' },
    region: { type: 'string' },
    dir: { type: 'string' },
    seed: { type: 'string' },
    verbose: { type: 'boolean' },
  },
  run: async (ctx) => (await tools()).runSim(ctx),
};

const probe: Command = {
  path: ['radio', 'probe'],
  summary: 'identify the radio on a serial path: RNode (KISS) or Meshtastic, firmware and settings',
  usage: 'PATH',
  options: { verbose: { type: 'boolean' } },
  run: async (ctx) => (await tools()).runProbe(ctx),
};

const send: Command = {
  path: ['radio', 'send'],
  summary: 'send bytes from a radio: --hex or --text, once or --count times',
  usage:
    'PATH (--hex HEX | --text TEXT) [--count N] [--kind rnode|meshtastic] [RNode: --frequency-hz --bandwidth-hz --sf --cr --tx-power-dbm --region]',
  options: { ...RNODE_OPTIONS, hex: { type: 'string' }, text: { type: 'string' }, count: { type: 'string' } },
  run: async (ctx) => (await tools()).runSend(ctx),
};

const listen: Command = {
  path: ['radio', 'listen'],
  summary: 'print what a radio hears (Outpost LoRa headers decoded) until Ctrl-C or --count packets',
  usage:
    'PATH [--count N] [--kind rnode|meshtastic] [RNode: --frequency-hz --bandwidth-hz --sf --cr --tx-power-dbm --region]',
  options: { ...RNODE_OPTIONS, count: { type: 'string' } },
  run: async (ctx) => (await tools()).runListen(ctx),
};

export const radioCommands: readonly Command[] = [sim, probe, send, listen];
