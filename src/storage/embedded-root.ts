/**
 * The embedded server as root, from any directory. PostgreSQL refuses to run as root, so initdb/pg_ctl run as the
 * OS user `postgres`, who must be able to reach (search, `x`) every directory above the binaries and above the data
 * directory. Under /root (0700), a `mktemp -d` directory (0700) or any private tree it cannot, and initdb fails with
 * EACCES. So, as root only and only when needed:
 *  - the server binaries (the platform package's `native/`: bin, lib, share) are copied once per package version to
 *    `<runtime dir>/pg-<version>-<platform>-<arch>/`, owned by root, world-readable (what a package manager does);
 *  - the data directory goes to `<runtime dir>/data/<path-slug>` instead of EMBEDDED_PG_DIR, owned by postgres,
 *    mode 0700 (as PostgreSQL demands). The slug is derived from the configured absolute path, so the collector,
 *    `npm run query`, `npm run db` and the demo, configured alike, all find the same cluster.
 * The runtime dir defaults to /var/lib/market-collector (EMBEDDED_PG_RUNTIME_DIR), created 0755. The start line
 * names where the binaries and the data are, and why.
 */
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { arch, platform } from 'node:os';
import { dirname, join, parse, resolve, sep } from 'node:path';
import { StorageError } from './errors.ts';

/** Who the server runs as: uid, primary gid and every group (from `id -G`). */
export interface PgUser {
  readonly uid: number;
  readonly gid: number;
  readonly groups: readonly number[];
}

/** Every directory from `/` down to `path` itself, in that order. */
function chain(path: string): string[] {
  const out: string[] = [];
  let p = resolve(path);
  for (;;) {
    out.unshift(p);
    const up = dirname(p);
    if (up === p) return out;
    p = up;
  }
}

/** Can `who` search (enter) directory `dir`? Plain mode bits (no ACLs); a missing dir answers undefined. */
function canSearch(dir: string, who: PgUser): boolean | undefined {
  let st;
  try {
    st = statSync(dir);
  } catch {
    return undefined;
  }
  if (st.uid === who.uid) return (st.mode & 0o100) !== 0;
  if (st.gid === who.gid || who.groups.includes(st.gid)) return (st.mode & 0o010) !== 0;
  return (st.mode & 0o001) !== 0;
}

/** The first existing directory on the way to `path` (included) that `who` cannot enter, or null. */
export function blockingDirectory(path: string, who: PgUser): string | null {
  for (const dir of chain(path)) {
    const ok = canSearch(dir, who);
    if (ok === undefined) return null; // the rest does not exist yet: we create it with the usual modes
    if (!ok) return dir;
  }
  return null;
}

function describeBlock(dir: string): string {
  const st = statSync(dir);
  return `${dir} (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}, owner uid ${st.uid})`;
}

export interface Placement {
  readonly path: string;
  /** Why it is not where configured; undefined when it is. */
  readonly movedBecause?: string;
}

function ensureRuntimeDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o755 });
}

/**
 * Where the server binaries are used from: the package's `native/` dir when `postgres` can reach it, else a copy
 * under the runtime dir (made once per version; an interrupted copy is never used: it is renamed into place).
 */
export function placeBinaries(nativeDir: string, runtimeDir: string, who: PgUser): Placement {
  const blocked = blockingDirectory(join(nativeDir, 'bin'), who);
  if (blocked === null) return { path: nativeDir };
  let version = 'unknown';
  try {
    version = (JSON.parse(readFileSync(join(dirname(nativeDir), 'package.json'), 'utf8')) as { version?: string }).version ?? version;
  } catch {
    // a native dir outside a package: keyed by its path below
  }
  const key = `pg-${version}-${platform()}-${arch()}-${createHash('sha256').update(resolve(nativeDir)).digest('hex').slice(0, 8)}`;
  const target = join(runtimeDir, key);
  const because = `the OS user postgres cannot enter ${describeBlock(blocked)}`;
  if (existsSync(join(target, 'bin', 'postgres'))) return { path: target, movedBecause: because };
  ensureRuntimeDir(runtimeDir);
  const tmp = `${target}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  try {
    // verbatimSymlinks: the libs' relative symlinks stay relative (restored by the package's postinstall)
    cpSync(nativeDir, tmp, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
    renameSync(tmp, target);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    if (!existsSync(join(target, 'bin', 'postgres'))) {
      throw new StorageError(`running as root, ${because}, and the server binaries could not be copied to ${target}: ${(err as Error).message}; set EMBEDDED_PG_RUNTIME_DIR to a directory root can write, or DATABASE_URL`, 'other', { cause: err });
    }
    // another process put it there first
  }
  const blockedCopy = blockingDirectory(join(target, 'bin'), who);
  if (blockedCopy !== null) throw new StorageError(`running as root, the OS user postgres cannot enter ${describeBlock(blockedCopy)} either; set EMBEDDED_PG_RUNTIME_DIR to a directory it can reach`, 'other');
  return { path: target, movedBecause: because };
}

/** `/root/x/.data/postgres` → `root-x-.data-postgres-1a2b3c4d` (readable, and unique per absolute path). */
export function pathSlug(path: string): string {
  const abs = resolve(path);
  const readable = abs.slice(parse(abs).root.length).split(sep).join('-').replace(/[^A-Za-z0-9._-]/g, '_').slice(-80);
  return `${readable || 'root'}-${createHash('sha256').update(abs).digest('hex').slice(0, 8)}`;
}

/**
 * Where the data directory is: as configured when `postgres` can reach its parent, else under the runtime dir.
 * A cluster that already exists where configured but cannot be reached is an error naming the way out, never a
 * silent new empty cluster elsewhere.
 */
export function placeDataDir(dataDir: string, runtimeDir: string, who: PgUser): Placement {
  const blocked = blockingDirectory(dirname(dataDir), who);
  if (blocked === null) return { path: dataDir };
  const because = `the OS user postgres cannot enter ${describeBlock(blocked)}`;
  if (existsSync(join(dataDir, 'PG_VERSION'))) {
    throw new StorageError(`running as root, the embedded data directory ${dataDir} exists but ${because}; move it (and set EMBEDDED_PG_DIR) somewhere postgres can reach, or make ${blocked} searchable (chmod o+x)`, 'other');
  }
  const base = join(runtimeDir, 'data');
  ensureRuntimeDir(base);
  return { path: join(base, pathSlug(dataDir)), movedBecause: because };
}

export const DEFAULT_RUNTIME_DIR = '/var/lib/market-collector';
