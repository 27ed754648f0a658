// `outpost demo`: the whole system on one machine, without hardware or cloud (cli/demo-run.ts).

import { resolve } from 'node:path';
import { type Command, optString } from '../command.ts';

export const demoCommands: Command[] = [
  {
    path: ['demo'],
    summary: 'run a whole site on 127.0.0.1: control plane, gateway with emulated radios, WSS and LoRa agents',
    usage: '[--state-dir DIR] [--port N] [--refresh-s N] [--json]',
    options: {
      'state-dir': { type: 'string' },
      port: { type: 'string' },
      'refresh-s': { type: 'string' },
    },
    async run(ctx) {
      const { runDemo } = await import('../demo-run.ts');
      const port = Number(optString(ctx, 'port') ?? '7443');
      const refreshS = Number(optString(ctx, 'refresh-s') ?? '2');
      if (!Number.isInteger(port) || port < 1 || port > 65_535) throw new Error('--port must be 1..65535');
      if (!(refreshS >= 0.2 && refreshS <= 3600)) throw new Error('--refresh-s must be 0.2..3600');
      const controller = new AbortController();
      const stop = () => controller.abort();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      const tty = !ctx.json && process.stdout.isTTY === true;
      const stdin = process.stdin;
      if (stdin.isTTY) stdin.setRawMode(true);
      async function* keys(): AsyncIterable<string> {
        stdin.setEncoding('utf8');
        for await (const chunk of stdin) {
          for (const k of String(chunk)) {
            // In raw mode Ctrl-C arrives as a byte, not as SIGINT.
            if (k === 'q' || k === '\u0003') stop();
            else if (k === 'b') yield k;
          }
          if (controller.signal.aborted) return;
        }
      }
      try {
        return await runDemo({
          stateDir: resolve(ctx.io.cwd, optString(ctx, 'state-dir') ?? '.outpost-demo'),
          port,
          mode: tty ? 'tty' : 'json',
          refreshMs: refreshS * 1000,
          write: (t) => ctx.io.stdout(t),
          env: process.env,
          keys: keys(),
          signal: controller.signal,
        });
      } finally {
        if (stdin.isTTY) stdin.setRawMode(false);
        // An open stdin pipe would keep the process alive after every child is gone.
        stdin.destroy();
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
      }
    },
  },
];
