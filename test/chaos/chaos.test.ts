// The short variant of every chaos scenario, in npm test: real processes, real kill -9, a real misbehaving
// proxy; each scenario bounds its own time. `npm run chaos` runs the long variants.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { chaosTable } from './harness/report.ts';
import { SCENARIOS } from './scenarios.ts';

describe('chaos (short variants)', () => {
  for (const s of SCENARIOS.filter((x) => x.inCi !== false)) {
    const why = s.unavailable();
    it(`${s.name}: ${s.claim}`, { skip: why ?? false, todo: s.knownIssue ?? false }, async (t) => {
      const dir = mkdtempSync(join(tmpdir(), 'outpost-chaos-'));
      try {
        const row = await s.run({ mode: 'ci', dir, log: (l) => t.diagnostic(l), progress: () => {} });
        t.diagnostic(chaosTable([row]));
        assert.ok(row.passed, row.note ?? `lost ${row.lost}, duplicated ${row.duplicated}`);
        assert.equal(row.lost, 0);
        assert.equal(row.duplicated, 0);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
