/**
 * A real small filesystem for disk-full tests: a tmpfs of a given size mounted on a fresh temp dir. Mounting needs
 * root (CI runs as root); elsewhere `mountTmpfs` returns the reason to skip.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Tmpfs {
  readonly dir: string;
  unmount(): void;
}

export function mountTmpfs(sizeKiB: number): Tmpfs | { skip: string } {
  if (process.platform !== 'linux') return { skip: `tmpfs disk-full test needs Linux (this is ${process.platform})` };
  if (process.getuid?.() !== 0) return { skip: 'tmpfs disk-full test needs root to mount a small filesystem (CI runs as root)' };
  const dir = mkdtempSync(join(tmpdir(), 'mc-tmpfs-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeKiB}k,mode=0755`, 'tmpfs', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    return { skip: `cannot mount a tmpfs here (${stderr || (err as Error).message}): the disk-full test needs mount permission` };
  }
  let mounted = true;
  return {
    dir,
    unmount() {
      if (!mounted) return;
      mounted = false;
      try {
        execFileSync('umount', [dir], { stdio: 'ignore' });
      } catch {
        execFileSync('umount', ['-l', dir], { stdio: 'ignore' });
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
