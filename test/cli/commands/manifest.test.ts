import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { EXIT } from '../../../cli/exit.ts';
import type { CliIo } from '../../../cli/io.ts';
import { main } from '../../../cli/main.ts';
import type { McpToolDefinition } from '../../../protocol/mcp-projection.ts';
import { vectorJson } from '../../support/protocol-vectors.ts';

const ROOT = resolve(import.meta.dirname, '../../..');
const EXAMPLES = 'examples/manifests';

interface Captured {
  io: CliIo;
  out: () => string;
  err: () => string;
}

function capture(cwd = ROOT): Captured {
  let out = '';
  let err = '';
  return {
    io: {
      stdout: (t) => {
        out += t;
      },
      stderr: (t) => {
        err += t;
      },
      env: {},
      stdin: Readable.from([]),
      isTty: false,
      cwd,
      stopSignal: new AbortController().signal,
    },
    out: () => out,
    err: () => err,
  };
}

async function run(args: string[], cwd = ROOT): Promise<{ code: number; out: string; err: string }> {
  const c = capture(cwd);
  const code = await main(args, c.io);
  return { code, out: c.out(), err: c.err() };
}

const valid = vectorJson<{ vectors: { name: string; hash: string }[] }>('manifest', 'valid.json').vectors;
const invalid = vectorJson<{
  vectors: {
    name: string;
    error: string;
    issues: { path: string | null; line: number | null; column: number | null }[];
  }[];
}>('manifest', 'invalid.json').vectors;
const hashOf = (example: string) => valid.find((v) => v.name.includes(`${EXAMPLES}/${example}`))!.hash;

const tmp = mkdtempSync(join(tmpdir(), 'outpost-manifest-cli-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('outpost manifest validate', () => {
  it('prints OK and the manifest hash', async () => {
    const r = await run(['manifest', 'validate', `${EXAMPLES}/greenhouse.json`]);
    assert.equal(r.code, EXIT.ok, r.err);
    assert.match(r.out, /^OK examples\/manifests\/greenhouse\.json$/m);
    assert.ok(r.out.includes(hashOf('greenhouse.json')));
    assert.match(r.out, /tools 5, streams 4, radios 1/);
    assert.equal(r.err, '');
  });

  it('--json prints a machine-readable summary', async () => {
    const r = await run(['manifest', 'validate', '--json', `${EXAMPLES}/minimal.json`]);
    assert.equal(r.code, EXIT.ok);
    assert.deepEqual(JSON.parse(r.out), {
      ok: true,
      file: `${EXAMPLES}/minimal.json`,
      hash: hashOf('minimal.json'),
      device: { id: 'did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp', name: 'probe-7' },
      tools: 1,
      streams: 0,
      radios: 0,
    });
  });

  for (const v of invalid.filter((x) => x.name.startsWith(`${EXAMPLES}/invalid/`))) {
    const file = v.name;
    it(`${file}: each problem at FILE:LINE:COLUMN, non-zero exit`, async () => {
      const r = await run(['manifest', 'validate', file]);
      assert.equal(r.code, v.error === 'MANIFEST_INVALID' ? EXIT.config : EXIT.dataError);
      const lines = r.err.trimEnd().split('\n');
      for (const [i, issue] of v.issues.entries()) {
        const prefix = `${file}:${issue.line}:${issue.column}: ${issue.path === null ? '' : `${issue.path}: `}`;
        assert.ok(lines[i]!.startsWith(prefix), `line ${i}: ${lines[i]} does not start with ${prefix}`);
      }
      assert.match(lines[lines.length - 1]!, new RegExp(`^outpost: .*\\[${v.error}\\]$`));
      assert.equal(r.out, '');
    });
  }

  it('--json reports the error with every located issue on stdout', async () => {
    const file = `${EXAMPLES}/invalid/unknown-member.json`;
    const r = await run(['manifest', 'validate', file, '--json']);
    assert.equal(r.code, EXIT.config);
    assert.equal(r.err, '');
    const { error } = JSON.parse(r.out);
    assert.equal(error.code, 'MANIFEST_INVALID');
    assert.equal(error.details.file, file);
    assert.deepEqual(
      error.details.issues.map((i: { path: string; line: number; column: number }) => [i.path, i.line, i.column]),
      [
        ['/tools/0/safety_class', 9, 5],
        ['/tools/0/safetyClass', 17, 7],
      ],
    );
  });

  it('reads files relative to the working directory, and skips a UTF-8 byte-order mark', async () => {
    writeFileSync(join(tmp, 'bom.json'), `\uFEFF${readFileSync(resolve(ROOT, EXAMPLES, 'minimal.json'), 'utf8')}`);
    const r = await run(['manifest', 'validate', 'bom.json'], tmp);
    assert.equal(r.code, EXIT.ok, r.err);
    assert.ok(r.out.includes(hashOf('minimal.json')));
  });

  it('refuses a file that is not UTF-8', async () => {
    writeFileSync(join(tmp, 'latin1.json'), Buffer.from([0x7b, 0x22, 0xe9, 0x22, 0x3a, 0x31, 0x7d]));
    const r = await run(['manifest', 'validate', 'latin1.json'], tmp);
    assert.equal(r.code, EXIT.dataError);
    assert.match(r.err, /not valid UTF-8 \[BAD_ENCODING\]/);
  });

  it('refuses a file larger than a manifest may be, without parsing it', async () => {
    writeFileSync(join(tmp, 'big.json'), `[${'0,'.repeat(150_000)}0]`);
    const r = await run(['manifest', 'validate', 'big.json'], tmp);
    assert.equal(r.code, EXIT.dataError);
    assert.match(r.err, /at most 262144 \[JSON_TOO_LARGE\]/);
  });

  it('exits 66 for a missing file or a directory, 64 for a usage error', async () => {
    assert.equal((await run(['manifest', 'validate', 'no-such.json'])).code, EXIT.noInput);
    assert.match((await run(['manifest', 'validate', 'no-such.json'])).err, /no such file \[NO_INPUT\]/);
    assert.equal((await run(['manifest', 'validate', EXAMPLES])).code, EXIT.noInput);
    assert.equal((await run(['manifest', 'validate'])).code, EXIT.usage);
    assert.equal((await run(['manifest', 'validate', 'a.json', 'b.json'])).code, EXIT.usage);
    assert.equal((await run(['manifest', 'validate', '--bogus', 'a.json'])).code, EXIT.usage);
  });
});

describe('outpost manifest mcp', () => {
  const golden = vectorJson<{ namePrefix: string | null; tools: McpToolDefinition[] }>(
    'mcp-projection',
    'greenhouse.json',
  );

  it('--json --gateway prints the gateway tools/list (golden)', async () => {
    const r = await run(['manifest', 'mcp', '--gateway', '--json', `${EXAMPLES}/greenhouse.json`]);
    assert.equal(r.code, EXIT.ok, r.err);
    assert.deepEqual(JSON.parse(r.out), { tools: golden.tools });
  });

  it('--prefix=LABEL names tools for that label; without it, names are local', async () => {
    const a = JSON.parse(
      (await run(['manifest', 'mcp', '--prefix=gh-9', '--json', `${EXAMPLES}/greenhouse.json`])).out,
    );
    assert.equal(a.tools[3].name, 'gh-9.valve.open');
    const b = JSON.parse((await run(['manifest', 'mcp', '--json', `${EXAMPLES}/greenhouse.json`])).out);
    assert.equal(b.tools[3].name, 'valve.open');
  });

  it('prints one line per tool with its hints', async () => {
    const r = await run(['manifest', 'mcp', '--gateway', `${EXAMPLES}/greenhouse.json`]);
    assert.equal(r.code, EXIT.ok);
    const lines = r.out.trimEnd().split('\n');
    assert.equal(lines.length, 5);
    assert.match(lines[0]!, /^greenhouse-1\.soil\.read_moisture +Read soil moisture +\[read-only, idempotent\]$/);
    assert.match(lines[2]!, /^greenhouse-1\.fan\.set +Set fan speed +\[writes\]$/);
    assert.match(lines[3]!, /^greenhouse-1\.valve\.open +Open irrigation valve +\[writes, destructive, open-world\]$/);
  });

  it('refuses an invalid manifest like validate does, and a bad prefix as a protocol error', async () => {
    const bad = await run(['manifest', 'mcp', `${EXAMPLES}/invalid/duplicate-tool.json`]);
    assert.equal(bad.code, EXIT.config);
    assert.match(bad.err, /duplicate-tool\.json:20:7: \/tools\/1\/name: tool "system\.info" is declared twice/);
    const prefix = await run(['manifest', 'mcp', '--prefix=Bad Label', `${EXAMPLES}/minimal.json`]);
    assert.equal(prefix.code, EXIT.dataError);
    assert.match(prefix.err, /MCP_NAME_INVALID/);
    assert.equal(
      (await run(['manifest', 'mcp', '--prefix=a', '--gateway', `${EXAMPLES}/minimal.json`])).code,
      EXIT.usage,
    );
  });
});

describe('outpost manifest as a real process', () => {
  const exec = promisify(execFile);
  const bin = resolve(ROOT, 'cli/bin.ts');

  it('validates a good manifest with exit 0', async () => {
    const { stdout } = await exec(process.execPath, [bin, 'manifest', 'validate', `${EXAMPLES}/greenhouse.json`], {
      cwd: ROOT,
    });
    assert.ok(stdout.includes(hashOf('greenhouse.json')));
  });

  it('exits 78 with located problems on stderr for an invalid one', async () => {
    await assert.rejects(
      exec(process.execPath, [bin, 'manifest', 'validate', `${EXAMPLES}/invalid/reversible-without-undo.json`], {
        cwd: ROOT,
      }),
      (e: { code: number; stderr: string }) => {
        assert.equal(e.code, EXIT.config);
        assert.match(
          e.stderr,
          /reversible-without-undo\.json:9:5: \/tools\/0\/undo: a reversible tool must declare how to undo it/,
        );
        return true;
      },
    );
  });
});
