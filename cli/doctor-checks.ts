// The checks behind `outpost doctor`: what an agent needs — config, manifest, trust bundle, state directory, identity key,
// database integrity, clock, serial devices, programs, the running daemon — and says how to fix each problem.

import { accessSync, constants, statSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { AGENT_MIGRATIONS } from '../agent/agent-store.ts';
import type { StatusView } from '../agent/api-types.ts';
import { builtinTools } from '../agent/builtin-tools.ts';
import type { ConfigIssue } from '../agent/config.ts';
import { loadIdentity } from '../agent/identity.ts';
import { buildAgentManifest } from '../agent/manifest-builder.ts';
import { createRecentTelemetry } from '../agent/recent-telemetry.ts';
import { createSystemInfo } from '../agent/system-info.ts';
import { loadTrustBundle } from '../agent/trust-bundle.ts';
import { isWallClockTrusted } from '../agent/wall-clock.ts';
import { systemClock } from '../protocol/clock.ts';
import { isOutpostError } from '../protocol/errors.ts';
import { AUDIT_MIGRATIONS } from '../store/audit.ts';
import { openDatabase } from '../store/database.ts';
import { OUTBOX_MIGRATIONS } from '../store/outbox.ts';
import { SEQUENCE_MIGRATIONS } from '../store/sequence.ts';
import { agentClient, type LoadedAgentConfig, loadAgentConfig } from './agent-setup.ts';
import { buildInfo } from './build-info.ts';
import type { CommandContext } from './command.ts';

export type CheckResult = 'ok' | 'warn' | 'fail' | 'info';

export interface DoctorCheck {
  readonly name: string;
  readonly result: CheckResult;
  readonly detail: string;
  readonly fix?: string;
}

export const MARK: Readonly<Record<CheckResult, string>> = { ok: '✓', warn: '!', fail: '✗', info: 'i' };
/** A placeholder identity for checking a manifest when the real key cannot be read. */
const PLACEHOLDER_DID = 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK';
/** Clock more than this behind the last time the store saw counts as having jumped backwards. */
const CLOCK_BEHIND_TOLERANCE_MS = 5 * 60_000;

function why(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function issuesText(e: unknown): string {
  const issues = isOutpostError(e) ? (e.details.issues as ConfigIssue[] | undefined) : undefined;
  if (!issues) return why(e);
  return issues
    .map((i) => `${i.line ? `line ${i.line}:${i.column} ` : ''}${i.path ? `${i.path}: ` : ''}${i.message}`)
    .join('; ');
}

function checkStateDir(cfg: LoadedAgentConfig, uid: number): DoctorCheck {
  const dir = cfg.paths.stateDir;
  try {
    const st = statSync(dir);
    if (!st.isDirectory()) return { name: 'state directory', result: 'fail', detail: `${dir} is not a directory` };
    const mode = st.mode & 0o777;
    if ((mode & 0o022) !== 0) {
      return {
        name: 'state directory',
        result: 'fail',
        detail: `${dir} is writable by group or others (mode ${mode.toString(8)})`,
        fix: `chmod go-w ${dir}`,
      };
    }
    accessSync(dir, constants.R_OK | constants.W_OK | constants.X_OK);
    const owner = st.uid === uid ? '' : ` (owned by uid ${st.uid}, you are ${uid})`;
    return { name: 'state directory', result: 'ok', detail: `${dir}, mode ${mode.toString(8)}${owner}` };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      return {
        name: 'state directory',
        result: 'warn',
        detail: `${dir} does not exist yet (the agent creates it, mode 700)`,
        fix: `check that the agent's user may create ${dir}, or set OUTPOST_STATE_DIR / [paths] state_dir`,
      };
    }
    return {
      name: 'state directory',
      result: 'fail',
      detail: `${dir}: ${code ?? why(e)}`,
      fix: `run doctor as the agent's user (sudo -u outpost outpost doctor), or fix ownership: chown -R outpost: ${dir}`,
    };
  }
}

function checkIdentity(cfg: LoadedAgentConfig, ctx: CommandContext): { check: DoctorCheck; did?: string } {
  try {
    const id = loadIdentity({ keyFile: cfg.paths.identityKeyFile, env: ctx.io.env, create: false });
    return {
      check: {
        name: 'identity key',
        result: 'ok',
        detail: `${id.did} (${id.source === 'credential' ? 'systemd credential' : cfg.paths.identityKeyFile})`,
      },
      did: id.did,
    };
  } catch (e) {
    const code = isOutpostError(e) ? e.details.store_code : undefined;
    if (code === 'STORE_KEY_NOT_FOUND') {
      return {
        check: {
          name: 'identity key',
          result: 'warn',
          detail: `none yet at ${cfg.paths.identityKeyFile}: made on first start`,
        },
      };
    }
    if (code === 'STORE_KEY_PERMISSIONS') {
      return {
        check: {
          name: 'identity key',
          result: 'fail',
          detail: why(e),
          fix: `chmod 600 ${cfg.paths.identityKeyFile} and make the agent's user its owner`,
        },
      };
    }
    return { check: { name: 'identity key', result: 'fail', detail: why(e), fix: 'run doctor as the agent’s user' } };
  }
}

function checkDatabase(cfg: LoadedAgentConfig): DoctorCheck[] {
  const file = cfg.paths.databaseFile;
  try {
    statSync(file);
  } catch {
    return [{ name: 'database', result: 'info', detail: `none yet at ${file}: made on first start` }];
  }
  let db: ReturnType<typeof openDatabase> | undefined;
  try {
    db = openDatabase(file, {
      readonly: true,
      migrations: [OUTBOX_MIGRATIONS, SEQUENCE_MIGRATIONS, AUDIT_MIGRATIONS, AGENT_MIGRATIONS],
      integrityCheck: 'full',
    });
    const mark = db.sqlite.prepare('SELECT wall_ms AS wallMs FROM store_time WHERE id = 1').get() as { wallMs: number };
    const checks: DoctorCheck[] = [{ name: 'database', result: 'ok', detail: `${file}: integrity check passed` }];
    const behind = mark.wallMs - systemClock.nowMs();
    if (behind > CLOCK_BEHIND_TOLERANCE_MS) {
      checks.push({
        name: 'clock',
        result: 'warn',
        detail: `the clock reads ${Math.round(behind / 60_000)} min earlier than the agent's last write: it jumped back or is unset`,
        fix: 'check time sync (timedatectl status); queue ages and TTLs use store time and stay correct meanwhile',
      });
    }
    return checks;
  } catch (e) {
    const code = isOutpostError(e) ? e.code : 'ERROR';
    return [
      {
        name: 'database',
        result: 'fail',
        detail: `${file}: ${why(e)}`,
        ...(code === 'STORE_CORRUPT' ? {} : { fix: 'run doctor as the agent’s user; check free space with df' }),
      },
    ];
  } finally {
    db?.close();
  }
}

function checkProgram(program: string, where: string): DoctorCheck | undefined {
  if (!isAbsolute(program)) return undefined; // looked up in PATH at run time
  try {
    accessSync(program, constants.X_OK);
    return undefined;
  } catch (e) {
    return {
      name: 'program',
      result: 'fail',
      detail: `${where}: ${program} is not executable (${(e as NodeJS.ErrnoException).code})`,
      fix: `install it or chmod +x ${program}`,
    };
  }
}

export async function runDoctor(ctx: CommandContext): Promise<DoctorCheck[]> {
  const checks: DoctorCheck[] = [];
  let cfg: LoadedAgentConfig;
  try {
    cfg = loadAgentConfig(ctx);
    checks.push({ name: 'config', result: 'ok', detail: `${cfg.configFile} is valid` });
  } catch (e) {
    checks.push({
      name: 'config',
      result: 'fail',
      detail: issuesText(e),
      fix: isOutpostError(e, 'CONFIG_NOT_FOUND')
        ? 'write one (see examples/agent.toml) or pass --config FILE'
        : 'edit the config at the lines named (schema: docs/agent-config.schema.json)',
    });
    return checks;
  }
  checks.push(checkStateDir(cfg, process.getuid?.() ?? 0));
  const identity = checkIdentity(cfg, ctx);
  checks.push(identity.check);
  try {
    const recent = createRecentTelemetry(1);
    const m = buildAgentManifest({
      config: cfg.config,
      configFile: cfg.configFile,
      configText: cfg.text,
      deviceId: identity.did ?? PLACEHOLDER_DID,
      agentVersion: buildInfo().version,
      builtins: builtinTools({ systemInfo: createSystemInfo({ diskPath: cfg.paths.stateDir }), recent }),
    });
    checks.push({
      name: 'manifest',
      result: 'ok',
      detail: `${m.tools.size} tools, ${m.streams.size} streams, ${m.hash.slice(0, 19)}…`,
    });
    for (const t of m.tools.values()) {
      if (t.kind === 'exec') {
        const c = checkProgram(String(t.exec.argv[0]), `tool ${t.spec.name}`);
        if (c) checks.push(c);
      }
    }
    for (const s of m.streams.values()) {
      if (s.config.source.kind === 'exec') {
        const c = checkProgram(s.config.source.argv[0]!, `stream ${s.spec.name}`);
        if (c) checks.push(c);
      }
    }
  } catch (e) {
    checks.push({ name: 'manifest', result: 'fail', detail: issuesText(e), fix: 'edit the config at the lines named' });
  }
  if (cfg.config.trust && cfg.paths.trust) {
    try {
      const t = loadTrustBundle(cfg.paths.trust, cfg.config.trust);
      checks.push({
        name: 'trust bundle',
        result: 'ok',
        detail: `tenant ${t.tenantId}, ${t.jwks.keys.length} issuer key(s), ${t.policy.approvers.length} approvers`,
      });
    } catch (e) {
      checks.push({ name: 'trust bundle', result: 'fail', detail: why(e), fix: 'fix or replace the file named' });
    }
  } else {
    checks.push({
      name: 'trust bundle',
      result: 'info',
      detail:
        'none: only read_only tools can be called (outpost dev trust init makes one for tests and off-grid sites)',
    });
  }
  checks.push(...checkDatabase(cfg));
  if (!isWallClockTrusted(systemClock)) {
    checks.push({
      name: 'clock',
      result: 'fail',
      detail: `the clock reads ${new Date(systemClock.nowMs()).toISOString()}: not set (no RTC, no NTP yet)`,
      fix: 'enable time sync (timedatectl set-ntp true) or fit an RTC; tools with allowed_hours are refused until then',
    });
  } else if (!checks.some((c) => c.name === 'clock')) {
    checks.push({ name: 'clock', result: 'ok', detail: new Date(systemClock.nowMs()).toISOString() });
  }
  for (const r of cfg.config.radios) {
    try {
      const st = statSync(r.path);
      if (!st.isCharacterDevice()) throw Object.assign(new Error('not a character device'), { code: 'ENOTTY' });
      accessSync(r.path, constants.R_OK | constants.W_OK);
      checks.push({ name: 'serial device', result: 'ok', detail: `${r.kind} at ${r.path}` });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      checks.push({
        name: 'serial device',
        result: 'fail',
        detail: `${r.kind} at ${r.path}: ${code === 'ENOENT' ? 'not present' : code === 'EACCES' ? 'permission denied' : why(e)}`,
        fix:
          code === 'EACCES'
            ? "add the agent's user to the dialout group (usermod -aG dialout outpost)"
            : 'plug the radio in; prefer a /dev/serial/by-id/ path so it survives re-enumeration',
      });
    }
  }
  try {
    const s = await agentClient(ctx, 5_000).get<StatusView>('/v1/status');
    checks.push({
      name: 'agent',
      result: s.status.state === 'ok' ? 'ok' : s.status.state === 'failing' ? 'fail' : 'warn',
      detail: `running (${s.status.state}, ${s.status.link}) on ${s.endpoints.socket}${s.status.problems.length > 0 ? `: ${s.status.problems.map((p) => p.message).join('; ')}` : ''}`,
    });
  } catch (e) {
    checks.push({
      name: 'agent',
      result: 'warn',
      detail: `not reachable: ${why(e)}`,
      fix: 'start it: systemctl start outpost-agent (or outpost agent run --config FILE)',
    });
  }
  return checks;
}
