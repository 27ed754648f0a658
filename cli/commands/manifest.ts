// `outpost manifest validate FILE` and `outpost manifest mcp FILE`: check a CapabilityManifest file, reporting each
// problem at FILE:LINE:COLUMN, and show the MCP tool list the manifest projects to.

import { readFile, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { fromUtf8 } from '../../protocol/bytes.ts';
import { isOutpostError, OutpostError, ProtocolError } from '../../protocol/errors.ts';
import { type CapabilityManifest, decodeManifest, MAX_MANIFEST_BYTES, manifestHash } from '../../protocol/manifest.ts';
import { type McpToolDefinition, projectManifest } from '../../protocol/mcp-projection.ts';
import { type Command, type CommandContext, optString, print } from '../command.ts';

function fileArgument(ctx: CommandContext): string {
  if (ctx.positionals.length !== 1) {
    throw new OutpostError('USAGE', `expected exactly one FILE, got ${ctx.positionals.length} arguments`);
  }
  return ctx.positionals[0]!;
}

/** Reads the manifest file as UTF-8 (a leading byte-order mark is skipped), refusing it unread when too large. */
async function readManifestText(ctx: CommandContext, file: string): Promise<string> {
  const path = resolve(ctx.io.cwd, file);
  let bytes: Buffer;
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new OutpostError('NO_INPUT', `${file} is not a regular file`);
    if (info.size > MAX_MANIFEST_BYTES) {
      throw new ProtocolError(
        'JSON_TOO_LARGE',
        `${file} is ${info.size} bytes; a manifest is at most ${MAX_MANIFEST_BYTES}`,
      );
    }
    bytes = await readFile(path);
  } catch (e) {
    if (isOutpostError(e)) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (code ?? (e as Error).message);
    throw new OutpostError('NO_INPUT', `cannot read ${file}: ${why}`, { cause: e });
  }
  const text = fromUtf8(bytes, file);
  return text.startsWith('\uFEFF') ? text.slice(1) : text;
}

interface LocatedIssue {
  path?: string;
  message: string;
  line?: number;
  column?: number;
}

/**
 * Decodes the manifest in `file`. On failure prints each problem as `FILE:LINE:COLUMN: POINTER: message` (human mode)
 * and rethrows the error with `details.file` added, for cli/exit.ts to report and map to an exit code.
 */
async function loadManifest(ctx: CommandContext, file: string): Promise<CapabilityManifest> {
  const text = await readManifestText(ctx, file);
  try {
    return decodeManifest(text);
  } catch (e) {
    if (!(e instanceof ProtocolError)) throw e;
    const issues: LocatedIssue[] =
      (e.details.issues as LocatedIssue[] | undefined) ??
      (typeof e.details.line === 'number'
        ? [
            {
              message: e.message.replace(/^line \d+, column \d+: /, ''),
              line: e.details.line,
              column: e.details.column as number,
            },
          ]
        : []);
    if (!ctx.json) {
      for (const i of issues) {
        const where = i.line === undefined ? file : `${file}:${i.line}:${i.column}`;
        ctx.io.stderr(`${where}: ${i.path === undefined ? '' : `${i.path || '/'}: `}${i.message}\n`);
      }
    }
    throw new ProtocolError(e.code, `${file}: ${e.message}`, { cause: e, details: { ...e.details, file } });
  }
}

function hints(t: McpToolDefinition): string {
  const a = t.annotations;
  return [
    a.readOnlyHint ? 'read-only' : 'writes',
    a.destructiveHint ? 'destructive' : '',
    a.idempotentHint ? 'idempotent' : '',
    a.openWorldHint ? 'open-world' : '',
  ]
    .filter(Boolean)
    .join(', ');
}

export const manifestCommands: Command[] = [
  {
    path: ['manifest', 'validate'],
    summary: 'check a CapabilityManifest file; print its hash, or each problem at FILE:LINE:COLUMN',
    usage: 'FILE [--json]',
    async run(ctx) {
      const file = fileArgument(ctx);
      const m = await loadManifest(ctx, file);
      const hash = manifestHash(m);
      const summary = {
        ok: true,
        file,
        hash,
        device: { id: m.device.id, name: m.device.name },
        tools: m.tools.length,
        streams: m.streams?.length ?? 0,
        radios: m.radios?.length ?? 0,
      };
      print(ctx, summary, () =>
        [
          `OK ${file}`,
          `  hash    ${hash}`,
          `  device  ${m.device.name} (${m.device.id})`,
          `  tools ${summary.tools}, streams ${summary.streams}, radios ${summary.radios}`,
        ].join('\n'),
      );
      return 0;
    },
  },
  {
    path: ['manifest', 'mcp'],
    summary: 'print the MCP tool list a manifest projects to (--prefix LABEL or --gateway for gateway names)',
    usage: 'FILE [--prefix=LABEL | --gateway] [--json]',
    options: { prefix: { type: 'string' }, gateway: { type: 'boolean' } },
    async run(ctx) {
      const file = fileArgument(ctx);
      const prefix = optString(ctx, 'prefix');
      if (prefix !== undefined && ctx.values.gateway === true) {
        throw new OutpostError('USAGE', '--prefix and --gateway exclude each other');
      }
      const m = await loadManifest(ctx, file);
      const namePrefix = ctx.values.gateway === true ? m.device.name : prefix;
      const tools = projectManifest(m, namePrefix === undefined ? {} : { namePrefix });
      print(ctx, { tools }, () => {
        const width = Math.max(...tools.map((t) => t.name.length), 4);
        const rows = tools.map(
          (t) => `${t.name.padEnd(width)}  ${t.title ?? t.description.split('. ')[0]}  [${hints(t)}]`,
        );
        return tools.length === 0 ? `${file}: no tools` : rows.join('\n');
      });
      return 0;
    },
  },
];
