// The CLI's window on the process: streams, environment and TTY facts, passed in so tests can capture them.

export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly stdin: NodeJS.ReadableStream;
  readonly isTty: boolean;
  readonly cwd: string;
  /** Resolves when the process is asked to stop (SIGINT/SIGTERM); long-running commands await it. */
  readonly stopSignal: AbortSignal;
}

export function processIo(): CliIo {
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return {
    stdout: (t) => process.stdout.write(t),
    stderr: (t) => process.stderr.write(t),
    env: process.env,
    stdin: process.stdin,
    isTty: Boolean(process.stdout.isTTY),
    cwd: process.cwd(),
    stopSignal: stop.signal,
  };
}

/** Reads all of stdin (bounded), for secrets passed as `-`: they never appear on a command line. */
export async function readStdin(io: CliIo, maxBytes = 64 * 1024): Promise<string> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of io.stdin) {
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    total += b.length;
    if (total > maxBytes) throw new RangeError(`stdin exceeds ${maxBytes} bytes`);
    chunks.push(b);
  }
  return Buffer.concat(chunks).toString('utf8');
}
