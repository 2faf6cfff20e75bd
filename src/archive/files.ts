/** Durable file steps for the archive: fsync, atomic replace, hashing, and clean-up of a crashed writer's temp files. */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** Syncs a file's data, or (for a directory) the renames and unlinks made in it. */
export async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export const fsyncFile = fsyncPath;
export const fsyncDir = fsyncPath;

const TMP_MARK = '.tmp-';

/** A temp name beside `path` (same directory, so the final rename is atomic), tagged with our pid. */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}${TMP_MARK}${process.pid}-${randomBytes(4).toString('hex')}`);
}

/** Writes `data` to a temp file, syncs it, renames it over `path` and syncs the directory. */
export async function writeFileAtomic(path: string, data: string): Promise<void> {
  const tmp = tempPathFor(path);
  try {
    // fs.promises.writeFile loops until every byte is written (a short write is not taken as done).
    await writeFile(tmp, data, { flag: 'wx' });
    await fsyncFile(tmp);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await fsyncDir(dirname(path));
}

/** Deletes `path` if present, durably (so a stale manifest is gone before its file is replaced). */
export async function removeDurably(path: string): Promise<void> {
  await rm(path, { force: true });
  await fsyncDir(dirname(path));
}

export function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(path)
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('hex')));
  });
}

function pidAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes temp files in `dir` left by writers that are no longer running (a crash mid-export). */
export async function removeOrphanTemps(dir: string): Promise<number> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    const at = name.lastIndexOf(TMP_MARK);
    if (!name.startsWith('.') || at < 0) continue;
    const pid = Number(name.slice(at + TMP_MARK.length).split('-')[0]);
    if (Number.isSafeInteger(pid) && pid > 0 && !pidAlive(pid)) {
      await rm(join(dir, name), { recursive: true, force: true });
      removed++;
    }
  }
  return removed;
}
