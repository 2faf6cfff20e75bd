/**
 * Link.close() resolves even when ws never emits `close` for its socket (what an exception inside ws's message
 * listener leaves behind): it terminates, then finishes on a timer and destroys the TCP socket itself.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { PROJECT_ROOT } from './helpers/child-collector.ts';

test('close() of a socket whose ws is stuck after a listener threw resolves within two close graces', { timeout: 30_000 }, async () => {
  const { stdout, code } = await new Promise<{ stdout: string; code: number | null }>((resolve) => {
    const child = execFile(process.execPath, ['--import', 'tsx', 'test/fixtures/stuck-link.ts'], { cwd: PROJECT_ROOT, timeout: 20_000 }, (err, out) =>
      resolve({ stdout: out, code: err ? ((err as { code?: number }).code ?? null) : 0 }),
    );
    child.stdin?.end();
  });
  const report = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as { closedInMs: number | null; graceMs: number; err: string };
  assert.equal(report.err, 'Maximum call stack size exceeded', 'the fixture reproduced the throwing listener');
  assert.notEqual(report.closedInMs, null, 'close() never resolved: ws emitted no close and the Link waited for it forever');
  assert.equal(code, 0);
  assert.ok(report.closedInMs! <= 2 * report.graceMs + 500, `close() took ${report.closedInMs} ms (grace ${report.graceMs} ms)`);
});
