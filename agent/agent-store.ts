// The agent's own tables in its state database (a store component, migrated by store/database.ts):
// single-use values already spent (token jtis, quorum nonces), each allowed call's run (for rate limits and
// interlocks) and what undoes it. Times are store time, which does not jump with the wall clock.

import type { MigrationSet, StoreDatabase } from '../store/database.ts';

export const AGENT_MIGRATIONS: MigrationSet = {
  component: 'agent',
  migrations: [
    {
      version: 1,
      name: 'spent single-use values, tool runs and their undo',
      up: `
        CREATE TABLE agent_spent (
          kind TEXT NOT NULL,              -- 'jti' or 'quorum_nonce'
          value TEXT NOT NULL,
          forget_at_store_ms INTEGER NOT NULL,
          PRIMARY KEY (kind, value)
        ) STRICT, WITHOUT ROWID;
        CREATE INDEX agent_spent_forget ON agent_spent (forget_at_store_ms);
        CREATE TABLE agent_runs (
          call_id TEXT PRIMARY KEY,
          tool TEXT NOT NULL,
          started_store_ms INTEGER NOT NULL,
          ended_store_ms INTEGER,          -- null while running
          ok INTEGER,                      -- 1 when the call succeeded
          undo_tool TEXT,                  -- set after a successful reversible call
          undo_args TEXT,                  -- JSON
          undone_by TEXT                   -- call id of the undo, once run
        ) STRICT, WITHOUT ROWID;
        CREATE INDEX agent_runs_tool ON agent_runs (tool, started_store_ms);
        CREATE TABLE agent_meta (
          key TEXT PRIMARY KEY,
          value TEXT NOT NULL
        ) STRICT, WITHOUT ROWID;`,
    },
  ],
};

export type SpentKind = 'jti' | 'quorum_nonce';

export interface RunRecord {
  readonly callId: string;
  readonly tool: string;
  readonly ended: boolean;
  readonly ok: boolean;
  readonly undo: { readonly tool: string; readonly args: Record<string, unknown> } | undefined;
  readonly undoneBy: string | undefined;
}

export interface ToolRunHistory {
  readonly running: number;
  readonly lastEndStoreMs: number | undefined;
  readonly startsStoreMs: readonly number[];
}

export interface AgentStore {
  /** True when `value` was spent before. */
  isSpent(kind: SpentKind, value: string): boolean;
  /**
   * Commits an allowed call in one durable transaction: spends its single-use values and starts its run.
   * Returns false (and writes nothing) when a value was already spent, so two calls racing with one token
   * cannot both pass. `alsoWrite` runs inside the same transaction (the audit entry of the decision).
   */
  beginRun(
    run: { callId: string; tool: string },
    spend: readonly { kind: SpentKind; value: string; keepMs: number }[],
    alsoWrite: () => void,
  ): boolean;
  /** Ends a run; `undo` is what reverses it (successful reversible calls only). */
  endRun(callId: string, ok: boolean, undo: { tool: string; args: Record<string, unknown> } | undefined): void;
  /** Runs of `tool` that started at or after `sinceStoreMs`, plus any still running and the last end. */
  history(tool: string, sinceStoreMs: number): ToolRunHistory;
  findRun(callId: string): RunRecord | undefined;
  /** Marks `callId` undone by `undoCallId`; false when it already was. */
  markUndone(callId: string, undoCallId: string): boolean;
  /** Forgets that `undoCallId` undid `callId` (the undo failed, so it may be tried again). */
  clearUndone(callId: string, undoCallId: string): void;
  /** Runs left open by a crash are closed at `now` (their end is unknown; now is the safe assumption). */
  closeDanglingRuns(): number;
  /** Forgets spent values past their time and runs that ended more than `runRetentionMs` ago. */
  prune(runRetentionMs: number): number;
  /** Store time now (ms, jump-proof). */
  nowStoreMs(): number;
  getMeta(key: string): string | undefined;
  /** Sets a meta value; inside a caller's db.write it joins that transaction. */
  setMeta(key: string, value: string): void;
}

/** Thrown inside beginRun's transaction to roll it back; never escapes createAgentStore. */
class SpentAlready extends Error {}

/** The agent's tables in `db` (which must include AGENT_MIGRATIONS). */
export function createAgentStore(db: StoreDatabase): AgentStore {
  const s = db.sqlite;
  const isSpentStmt = s.prepare('SELECT 1 FROM agent_spent WHERE kind = ? AND value = ?').pluck();
  const spendStmt = s.prepare(
    'INSERT INTO agent_spent (kind, value, forget_at_store_ms) VALUES (?, ?, ?) ON CONFLICT DO NOTHING',
  );
  const startStmt = s.prepare('INSERT INTO agent_runs (call_id, tool, started_store_ms) VALUES (?, ?, ?)');
  const endStmt = s.prepare(
    'UPDATE agent_runs SET ended_store_ms = ?, ok = ?, undo_tool = ?, undo_args = ? WHERE call_id = ? AND ended_store_ms IS NULL',
  );
  const startsStmt = s
    .prepare(
      'SELECT started_store_ms FROM agent_runs WHERE tool = ? AND started_store_ms >= ? ORDER BY started_store_ms',
    )
    .pluck();
  const runningStmt = s.prepare('SELECT count(*) FROM agent_runs WHERE tool = ? AND ended_store_ms IS NULL').pluck();
  const lastEndStmt = s.prepare('SELECT max(ended_store_ms) FROM agent_runs WHERE tool = ?').pluck();
  const findStmt = s.prepare(
    'SELECT call_id, tool, ended_store_ms, ok, undo_tool, undo_args, undone_by FROM agent_runs WHERE call_id = ?',
  );
  const markStmt = s.prepare('UPDATE agent_runs SET undone_by = ? WHERE call_id = ? AND undone_by IS NULL');
  const clearStmt = s.prepare('UPDATE agent_runs SET undone_by = NULL WHERE call_id = ? AND undone_by = ?');
  const danglingStmt = s.prepare('UPDATE agent_runs SET ended_store_ms = ?, ok = 0 WHERE ended_store_ms IS NULL');
  const getMetaStmt = s.prepare('SELECT value FROM agent_meta WHERE key = ?').pluck();
  const setMetaStmt = s.prepare(
    'INSERT INTO agent_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
  );
  const pruneSpent = s.prepare('DELETE FROM agent_spent WHERE forget_at_store_ms < ?');
  const pruneRuns = s.prepare('DELETE FROM agent_runs WHERE ended_store_ms < ?');

  return {
    nowStoreMs: () => db.time.nowMs(),
    getMeta: (key) => db.read(() => getMetaStmt.get(key) as string | undefined),
    setMeta: (key, value) => {
      db.write(() => setMetaStmt.run(key, value));
    },
    isSpent: (kind, value) => db.read(() => isSpentStmt.get(kind, value) !== undefined),
    beginRun(run, spend, alsoWrite) {
      try {
        return db.write(() => {
          const now = db.time.nowMs();
          for (const v of spend) {
            if (spendStmt.run(v.kind, v.value, now + Math.max(0, Math.ceil(v.keepMs))).changes === 0) {
              throw new SpentAlready();
            }
          }
          startStmt.run(run.callId, run.tool, now);
          alsoWrite();
          return true;
        });
      } catch (e) {
        if (e instanceof SpentAlready) return false;
        throw e;
      }
    },
    endRun(callId, ok, undo) {
      db.write(() =>
        endStmt.run(db.time.nowMs(), ok ? 1 : 0, undo?.tool ?? null, undo ? JSON.stringify(undo.args) : null, callId),
      );
    },
    history(tool, sinceStoreMs) {
      return db.read(() => ({
        running: runningStmt.get(tool) as number,
        lastEndStoreMs: (lastEndStmt.get(tool) as number | null) ?? undefined,
        startsStoreMs: startsStmt.all(tool, sinceStoreMs) as number[],
      }));
    },
    findRun(callId) {
      const row = db.read(() => findStmt.get(callId)) as
        | {
            call_id: string;
            tool: string;
            ended_store_ms: number | null;
            ok: number | null;
            undo_tool: string | null;
            undo_args: string | null;
            undone_by: string | null;
          }
        | undefined;
      if (!row) return undefined;
      return {
        callId: row.call_id,
        tool: row.tool,
        ended: row.ended_store_ms !== null,
        ok: row.ok === 1,
        undo: row.undo_tool ? { tool: row.undo_tool, args: JSON.parse(row.undo_args ?? '{}') } : undefined,
        undoneBy: row.undone_by ?? undefined,
      };
    },
    markUndone: (callId, undoCallId) => db.write(() => markStmt.run(undoCallId, callId).changes === 1),
    clearUndone: (callId, undoCallId) => {
      db.write(() => clearStmt.run(callId, undoCallId));
    },
    closeDanglingRuns: () => db.write(() => danglingStmt.run(db.time.nowMs()).changes),
    prune(runRetentionMs) {
      return db.write(() => {
        const now = db.time.nowMs();
        return pruneSpent.run(now).changes + pruneRuns.run(now - runRetentionMs).changes;
      });
    },
  };
}
