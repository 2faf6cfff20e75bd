/**
 * The soak, short: `bench/soak.ts --seconds 60` as a real process (its own embedded PostgreSQL, which it restarts
 * once; every fault kind on a schedule; pool resets), and its verdict must pass: FDs and sockets back to baseline, no
 * old CLOSE_WAIT, database connections within PG_POOL_MAX, flat RSS, and a table equal to the simulator's tape.
 * No timing is asserted.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../helpers/child-collector.ts';

const SECONDS = Number(process.env.SOAK_SHORT_SECONDS ?? 60);

interface SoakJson {
  ok: boolean;
  checks: Array<{ name: string; value: string; ok: boolean }>;
  audit: { missing: number; duplicates: number; wrong: number } | null;
  samples: unknown[];
}

describe('short soak', () => {
  let out: string;
  before(() => {
    out = mkdtempSync(join(tmpdir(), 'mc-soak-short-'));
  });
  after(() => {
    rmSync(out, { recursive: true, force: true });
  });

  test(`${SECONDS} s soak: the verdict passes`, { timeout: (SECONDS + 240) * 1000 }, async () => {
    // Without DATABASE_URL the soak starts (and restarts) its own embedded PostgreSQL, not the tests' shared server.
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.DATABASE_URL;
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/soak.ts', '--seconds', String(SECONDS), '--out', out], {
      cwd: PROJECT_ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    console.log(output.trimEnd());

    const file = join(out, 'soak.json');
    assert.ok(existsSync(file), `soak.json written (exit ${code})`);
    const result = JSON.parse(readFileSync(file, 'utf8')) as SoakJson;
    for (const c of result.checks) assert.ok(c.ok, `${c.name}: ${c.value}`);
    assert.ok(result.audit, 'audited');
    assert.equal(result.audit.missing, 0);
    assert.equal(result.audit.duplicates, 0);
    assert.equal(result.audit.wrong, 0);
    assert.ok(result.samples.length >= SECONDS / 2, 'sampled every second');
    assert.ok(existsSync(join(out, 'soak.svg')), 'chart written');
    assert.equal(result.ok, true, 'verdict PASS');
    assert.equal(code, 0, 'exit code 0 on a passing verdict');
  });
});
