/**
 * Redaction matches pg's URL parser (issue #14 f): passwords with `@`, `:`, `/`, `%`, spaces and non-ASCII
 * characters are hidden in every place a URL can reach a log line: our own log fields, error messages and stacks,
 * errors from pg, the fatal start line, the CLIs' stderr. A real role with such a password is created on the test
 * server, so the URLs below are the ones pg really connects with.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parse as pgParse } from 'pg-connection-string';
import pg from 'pg';
import { redactSecrets, registerDatabaseUrl } from '../src/redact.ts';
import { loadConfig } from '../src/config.ts';
import { PROJECT_ROOT } from './helpers/child-collector.ts';
import { adminQuery, createTestDatabase, serverUrl } from './helpers/db.ts';
import { captureLogs } from './helpers/log-capture.ts';
import { freePort } from './helpers/free-port.ts';

/** Every form a password can take in text: as pg reads it, percent-encoded, and its longer pieces. */
function forms(password: string): string[] {
  const out = new Set([password, encodeURIComponent(password), encodeURI(password)]);
  // a piece left behind (after the first @, the part after a space...) is a leak too
  for (const piece of password.split(/[@:/ ]/)) if (piece.length >= 4) out.add(piece);
  return [...out];
}

function assertHidden(text: string, password: string, where: string): void {
  for (const f of forms(password)) assert.ok(!text.includes(f), `${where}: "${f}" of the password leaked in: ${text.slice(0, 400)}`);
}

const TRICKY = ['p@ss-S3cret', 'a:b:c-Z9q', 'sl/ash-K3y', '50%off-Q1w', '100%25done-P4x', 'pässwörd-✓-Ü8', 'all@:/% ü mixed-W7'];

describe('the URL pattern alone (a URL nobody registered)', () => {
  for (const pw of TRICKY.filter((p) => !p.includes(' '))) {
    test(`hides ${JSON.stringify(pw)} written raw, as pg reads it, and keeps the host`, () => {
      const url = `postgres://collector:${pw}@db.example.org:6432/ticks?sslmode=disable`;
      if (!pw.includes('/')) assert.equal(pgParse(url).password, decodeURIComponent(pw.replace(/%(?![0-9a-f]{2})/gi, '%25')), 'pg takes this as the password');
      const out = redactSecrets(`connect failed for ${url}: ECONNREFUSED`);
      assertHidden(out, pw, 'redacted');
      assert.match(out, /postgres:\/\/collector:\*\*\*@db\.example\.org:6432\/ticks\?sslmode=disable: ECONNREFUSED/);
    });
  }
  test('hides percent-encoded and non-ASCII forms, and password= pairs, PGPASSWORD included', () => {
    for (const pw of TRICKY) {
      assertHidden(redactSecrets(`postgres://u:${encodeURIComponent(pw)}@h/db`), encodeURIComponent(pw), 'encoded');
      assertHidden(redactSecrets(`host=h password='${pw}' dbname=x`), pw, 'libpq keyword');
    }
    assert.equal(redactSecrets('PGPASSWORD=hunter22 psql'), 'PGPASSWORD=*** psql');
    assert.equal(redactSecrets("PGPASSWORD=$(cat '/x/collector-password') psql -h h"), "PGPASSWORD=$(cat '/x/collector-password') psql -h h", 'the printed psql command stays usable');
    assert.equal(redactSecrets('postgres://u@h:5432/db and mail a@b.c'), 'postgres://u@h:5432/db and mail a@b.c', 'no password: nothing hidden');
  });
});

describe('a registered DATABASE_URL (loadConfig registers it) is hidden in every form, spaces included', () => {
  for (const pw of TRICKY) {
    test(JSON.stringify(pw), () => {
      const url = `postgres://collector:${encodeURIComponent(pw)}@db.example.org/ticks`;
      loadConfig({ DATABASE_URL: url });
      assert.equal(pgParse(url).password, pw);
      const logs = captureLogs('info');
      const err = Object.assign(new Error(`could not use ${pw} for ${url}`), { detail: `raw ${pw}`, nested: { deeper: { url } } });
      logs.logger.error({ err, url, pw: `the password is ${pw}` }, `failed: ${decodeURIComponent(url)}`);
      logs.logger.error(err);
      for (const line of logs.raw) assertHidden(line, pw, 'log line');
    });
  }
});

describe('real processes against a real server with a tricky password', () => {
  const PASSWORD = 'p@ss:w/rd% ü x-S3cr3t';
  const ROLE = 'redact_tricky';
  let db: { url: string; name: string; drop(): Promise<void> };
  let dir: string;
  const urlWith = (database: string, port?: number) => {
    const u = new URL(serverUrl());
    return `postgres://${ROLE}:${encodeURIComponent(PASSWORD)}@${u.hostname}:${port ?? u.port}/${database}`;
  };

  before(async () => {
    db = await createTestDatabase();
    dir = mkdtempSync(join(tmpdir(), 'mc-redact-'));
    await adminQuery(`drop role if exists ${ROLE}`);
    await adminQuery(`create role ${ROLE} login password '${PASSWORD.replace(/'/g, "''")}'`);
    await adminQuery(`grant all on database ${db.name} to ${ROLE}`);
    await adminQuery(`alter database ${db.name} owner to ${ROLE}`);
    // pg really logs in with it: the URL above is what pg parses
    const c = new pg.Client({ connectionString: urlWith(db.name) });
    await c.connect();
    await c.end();
  });
  after(async () => {
    await db.drop();
    await adminQuery(`drop role if exists ${ROLE}`).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  function run(args: string[], env: Record<string, string>, ms: number): Promise<{ code: number | null; out: string }> {
    // cwd is a scratch dir (no .env of the developer's); tsx is loaded from the project
    const proc = spawn(process.execPath, ['--import', pathToFileURL(join(PROJECT_ROOT, 'node_modules/tsx/dist/loader.mjs')).href, ...args], {
      cwd: dir, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => proc.kill('SIGKILL'), ms);
    return new Promise((resolve) => proc.on('exit', (code) => (clearTimeout(timer), resolve({ code, out }))));
  }

  const base = () => ({
    BINANCE_SYMBOLS: '', OKX_SYMBOLS: 'BTC-USDT', OKX_WS_URL: 'ws://127.0.0.1:9', OKX_REST_URL: 'http://127.0.0.1:9',
    METRICS_PORT: '0', PID_FILE: join(dir, 'c.pid'), SPILL_DIR: join(dir, 'spill'), LOG_LEVEL: 'debug',
  });

  test('collector: a missing database (an error from pg) and an unreachable server: nothing of the password logged', async () => {
    const missing = await run([join(PROJECT_ROOT, 'src/main.ts')], { ...base(), DATABASE_URL: urlWith('no_such_db') }, 30_000);
    assert.equal(missing.code, 1, missing.out);
    assert.match(missing.out, /could not start: database refused the start: 3D000/);
    assertHidden(missing.out, PASSWORD, 'missing database');
    const closed = await freePort();
    const late = await run([join(PROJECT_ROOT, 'src/main.ts')], { ...base(), DATABASE_URL: urlWith(db.name, closed), DB_START_TIMEOUT_MS: '800' }, 30_000);
    assert.equal(late.code, 1, late.out);
    assert.match(late.out, /waiting for the database/);
    assertHidden(late.out, PASSWORD, 'unreachable server');
    console.log(late.out.split('\n').filter((l) => /waiting|could not start/.test(l)).slice(-2).join('\n'));
  });

  test('migrate CLI: an error from pg prints nothing of the password', async () => {
    const bad = await run([join(PROJECT_ROOT, 'src/cli/migrate.ts')], { DATABASE_URL: urlWith('no_such_db') }, 30_000);
    assert.equal(bad.code, 1, bad.out);
    assert.match(bad.out, /does not exist/);
    assertHidden(bad.out, PASSWORD, 'migrate');
  });
});
