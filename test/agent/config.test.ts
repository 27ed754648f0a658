import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type ConfigIssue, parseConfig } from '../../agent/config.ts';
import { resolveAgentPaths } from '../../agent/paths.ts';
import { isOutpostError } from '../../protocol/errors.ts';

function issuesOf(text: string): ConfigIssue[] {
  try {
    parseConfig(text);
  } catch (e) {
    assert.ok(isOutpostError(e, 'CONFIG_INVALID', 'CONFIG_SYNTAX'), String(e));
    return e.details.issues as ConfigIssue[];
  }
  assert.fail('config was accepted');
}

const tool = (extra = '') => `
[[tools]]
name = "greenhouse.fan.set"
description = "Set the fan speed"
safety_class = "reversible"
${extra}
[tools.exec]
argv = ["/usr/local/bin/fanctl", "{speed}"]
[tools.undo]
tool = "greenhouse.fan.set"
args = { speed = { from = "result", pointer = "/previous" } }
`;

describe('parseConfig', () => {
  it('fills defaults for an empty file', () => {
    const c = parseConfig('');
    assert.equal(c.agent.utc_offset_minutes, 0);
    assert.equal(c.local_api.socket_mode, 0o660);
    assert.deepEqual(c.tools, []);
  });

  it('accepts a reversible tool with its undo', () => {
    const c = parseConfig(tool());
    assert.equal(c.tools[0]!.exec.output, 'text');
    assert.equal(c.tools[0]!.undo!.tool, 'greenhouse.fan.set');
  });

  it('reports a TOML syntax error at its line and column', () => {
    const [issue] = issuesOf('[agent]\nname = = "x"\n');
    assert.equal(issue!.line, 2);
    assert.equal(issue!.column, 8);
  });

  it('locates an unknown key at the key', () => {
    assert.deepEqual(issuesOf('[agent]\nname = "x"\ncolour = "red"\n'), [
      { path: 'agent.colour', line: 3, column: 1, message: 'unknown key "colour"' },
    ]);
  });

  it('locates a wrong value inside an array of tables', () => {
    const issues = issuesOf(tool('timeout_ms = -5'));
    assert.equal(issues.length, 1);
    assert.equal(issues[0]!.path, 'tools[0].timeout_ms');
    assert.equal(issues[0]!.line, 6);
  });

  it('locates a missing key at its table header', () => {
    const issues = issuesOf(
      '[[tools]]\nname = "a.b"\nsafety_class = "read_only"\n[tools.exec]\nargv = ["/bin/true"]\n',
    );
    assert.deepEqual(
      issues.map((i) => [i.path, i.line]),
      [['tools[0].description', 1]],
    );
  });

  const semantic: [string, string, string][] = [
    ['a reversible tool without undo', tool().replace(/\[tools\.undo\][\s\S]*$/, ''), 'tools[0]'],
    ['a reserved prefix', tool().replace('greenhouse.fan.set"\ndesc', 'system.fan"\ndesc'), 'tools[0].name'],
    ['an undo naming no tool', tool().replace('tool = "greenhouse.fan.set"', 'tool = "x.y"'), 'tools[0].undo.tool'],
    [
      'exclusive_with naming no tool',
      tool('exclusive_with = { tools = ["x.y"], window_s = 5 }'),
      'tools[0].exclusive_with.tools[0]',
    ],
    ['a bad device name', '[agent]\nname = "Green House"\n', 'agent.name'],
    ['an empty hours window', tool('allowed_hours = { from_hour = 6, to_hour = 6 }'), 'tools[0].allowed_hours'],
    [
      'a json source without a field',
      '[[streams]]\nname = "a.b"\nunit = "1"\nsource = { kind = "exec", argv = ["/bin/x"], output = "json" }\n',
      'streams[0].source',
    ],
    ['a duplicated tool', tool() + tool(), 'tools[1].name'],
  ];
  for (const [name, text, path] of semantic) {
    it(`refuses ${name}`, () =>
      assert.ok(
        issuesOf(text).some((i) => i.path === path),
        JSON.stringify(issuesOf(text)),
      ));
  }

  it('parses the shipped examples', () => {
    for (const f of ['agent.toml', 'agent.minimal.toml']) {
      parseConfig(readFileSync(join(import.meta.dirname, '../../examples', f), 'utf8'), f);
    }
  });
});

describe('resolveAgentPaths', () => {
  const c = parseConfig(
    '[paths]\nstate_dir = "state"\n[trust]\nissuer = "i"\njwks = "trust/jwks.json"\napproval_policy = "/etc/p.json"\n',
  );
  it('reads relative paths against the config file directory', () => {
    const p = resolveAgentPaths(c, '/etc/outpost/agent.toml', {}, '/');
    assert.equal(p.stateDir, '/etc/outpost/state');
    assert.equal(p.socketPath, '/etc/outpost/state/agent.sock');
    assert.equal(p.trust!.jwksFile, '/etc/outpost/trust/jwks.json');
    assert.equal(p.trust!.approvalPolicyFile, '/etc/p.json');
  });
  it('lets the environment override', () => {
    const p = resolveAgentPaths(
      c,
      '/etc/outpost/agent.toml',
      { OUTPOST_STATE_DIR: 'tmp/s', OUTPOST_SOCKET: '/run/a.sock' },
      '/home/u',
    );
    assert.equal(p.stateDir, '/home/u/tmp/s');
    assert.equal(p.socketPath, '/run/a.sock');
  });
  it('puts the socket in systemd RuntimeDirectory, else /run/outpost-agent', () => {
    const bare = parseConfig('');
    assert.equal(
      resolveAgentPaths(bare, '/x/a.toml', { RUNTIME_DIRECTORY: '/run/oa' }, '/').socketPath,
      '/run/oa/agent.sock',
    );
    assert.equal(resolveAgentPaths(bare, '/x/a.toml', {}, '/').socketPath, '/run/outpost-agent/agent.sock');
  });
  it('falls back to systemd StateDirectory, then /var/lib/outpost', () => {
    const bare = parseConfig('');
    assert.equal(
      resolveAgentPaths(bare, '/x/a.toml', { STATE_DIRECTORY: '/var/lib/outpost-b' }, '/').stateDir,
      '/var/lib/outpost-b',
    );
    assert.equal(resolveAgentPaths(bare, '/x/a.toml', {}, '/').stateDir, '/var/lib/outpost');
  });
});

describe('parseConfig on damaged input (fuzz)', () => {
  it('only ever throws typed errors', async () => {
    const { assertDecoderTotal, byteInputs } = await import('../support/fuzz.ts');
    const seeds = ['agent.toml', 'agent.minimal.toml'].map(
      (f) => new Uint8Array(readFileSync(join(import.meta.dirname, '../../examples', f))),
    );
    const r = assertDecoderTotal(byteInputs(seeds), (bytes) => parseConfig(Buffer.from(bytes).toString('utf8')), {
      cases: Math.min(2_000, Number(process.env.OUTPOST_FUZZ_CASES) || 2_000),
    });
    assert.ok(r.rejected > 0);
  });
});
