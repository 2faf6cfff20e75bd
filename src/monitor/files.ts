/**
 * The pid file (written at start, removed at stop) and the stats file next to it holding the last stats line,
 * replaced atomically (write a temp file, then rename) so a reader never sees half a line.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/** `<pid file>.stats.json`: where the last stats line of the collector owning `pidFile` is kept. */
export function statsFileFor(pidFile: string): string {
  return `${pidFile}.stats.json`;
}

/** The pid in a pid file, or null when the file is missing or does not hold a pid. */
export function readPidFile(pidFile: string): number | null {
  let text: string;
  try {
    text = readFileSync(pidFile, 'utf8');
  } catch {
    return null;
  }
  const pid = Number(text.trim());
  return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as { code?: string }).code === 'EPERM';
  }
}

/** Writes our pid; returns the pid of another live process that held the file, if any (the caller warns). */
export function writePidFile(pidFile: string): number | null {
  const previous = readPidFile(pidFile);
  mkdirSync(dirname(pidFile), { recursive: true });
  writeFileSync(pidFile, `${process.pid}\n`);
  return previous !== null && previous !== process.pid && isAlive(previous) ? previous : null;
}

/** Removes the pid file if it is still ours; true if it was (then the files next to it are ours too). */
export function removePidFile(pidFile: string): boolean {
  if (readPidFile(pidFile) !== process.pid) return false;
  rmSync(pidFile, { force: true });
  return true;
}

/** Serialises atomic replacements of one file; a write never overlaps the previous one. */
export class AtomicFile {
  readonly path: string;
  #chain: Promise<void> = Promise.resolve();

  constructor(path: string) {
    this.path = path;
  }

  write(content: string): Promise<void> {
    const tmp = `${this.path}.${process.pid}.tmp`;
    const next = this.#chain.catch(() => {}).then(async () => {
      await writeFile(tmp, content);
      await rename(tmp, this.path);
    });
    this.#chain = next;
    return next;
  }

  /** Removes the file (call after settled()). */
  remove(): void {
    rmSync(this.path, { force: true });
    rmSync(`${this.path}.${process.pid}.tmp`, { force: true });
  }

  /** Resolves once every write so far has finished (failed ones included). */
  settled(): Promise<void> {
    return this.#chain.catch(() => {});
  }
}
