/**
 * The manifests under an archive root: ROOT/<exchange>/<symbol>/<file>.manifest.json (temp and staging names skipped).
 * A manifest that is not where it says it belongs is refused rather than read as another day or symbol.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ArchiveError } from './archive-error.ts';
import { MANIFEST_SUFFIX, STAGING_DIR } from './layout.ts';
import type { ArchiveFormat } from './layout.ts';
import { readManifest } from './manifest.ts';
import type { Manifest } from './manifest.ts';

export interface ArchivedFile {
  /** The data file (the manifest is beside it). */
  readonly path: string;
  readonly manifest: Manifest;
}

export interface IndexFilter {
  readonly exchange?: string;
  readonly symbol?: string;
  readonly format?: ArchiveFormat;
}

async function entries(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir, { withFileTypes: true })).filter((e) => !e.name.startsWith('.') && e.name !== STAGING_DIR).map((e) => e.name);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return [];
    throw err;
  }
}

/** Every archived file matching `filter`, ordered by exchange, symbol, day. A malformed manifest throws (ArchiveError). */
export async function listArchived(root: string, filter: IndexFilter = {}): Promise<ArchivedFile[]> {
  const out: ArchivedFile[] = [];
  for (const exchange of (await entries(root)).sort()) {
    if (filter.exchange !== undefined && exchange !== filter.exchange) continue;
    for (const symbol of (await entries(join(root, exchange))).sort()) {
      if (filter.symbol !== undefined && symbol !== filter.symbol) continue;
      const dir = join(root, exchange, symbol);
      for (const name of (await entries(dir)).filter((n) => n.endsWith(MANIFEST_SUFFIX)).sort()) {
        const manifest = await readManifest(join(dir, name));
        if (!manifest || (filter.format !== undefined && manifest.format !== filter.format)) continue;
        if (manifest.exchange !== exchange || manifest.symbol !== symbol || `${manifest.file}${MANIFEST_SUFFIX}` !== name) {
          throw new ArchiveError(`manifest ${join(dir, name)} describes ${manifest.exchange}/${manifest.symbol}/${manifest.file}: it is not in its place`);
        }
        out.push({ path: join(dir, manifest.file), manifest });
      }
    }
  }
  return out;
}
