/**
 * Peers the benchmark compares the collector with, installed at bench time rather than listed in package.json: a
 * peer is only ever run by `npm run bench`, so `npm ci` (developers, CI, `npm ci --omit=dev` in production) never
 * downloads it or its dependency tree, and the project's lockfile does not carry it. It is pinned to an exact
 * version, installed once with the ordinary npm client into node_modules/.cache (npm verifies the registry's
 * integrity hashes), and reused by later runs. Without the registry the peer's column says why it is missing.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../test/helpers/child-collector.ts';

export interface PeerInstall {
  readonly name: string;
  readonly version: string;
  /** The dir whose node_modules holds the package; null when it could not be installed. */
  readonly dir: string | null;
  /** Why it is missing (dir null). */
  readonly error?: string;
}

export const TARDIS_DEV = { name: 'tardis-dev', version: '13.35.3' } as const;

export function installPeer(peer: { name: string; version: string }, say: (msg: string) => void): PeerInstall {
  const dir = join(PROJECT_ROOT, 'node_modules', '.cache', 'market-collector-bench', `${peer.name}-${peer.version}`);
  if (existsSync(join(dir, 'node_modules', peer.name, 'package.json'))) return { ...peer, dir };
  say(`installing the peer ${peer.name}@${peer.version} into ${dir} (once; not a project dependency)`);
  try {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'package.json'), `${JSON.stringify({ private: true, description: 'benchmark peer, installed by bench/lib/peers.ts' })}\n`);
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts', '--save-exact', `${peer.name}@${peer.version}`], {
      cwd: dir,
      stdio: ['ignore', 'ignore', 'pipe'],
      timeout: 180_000,
    });
    return { ...peer, dir };
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    const detail = (e.stderr?.toString() ?? '').split('\n').filter((l) => l.trim() !== '').slice(-2).join(' ') || e.message;
    return { ...peer, dir: null, error: `npm install ${peer.name}@${peer.version} failed: ${detail.slice(0, 300)}` };
  }
}
