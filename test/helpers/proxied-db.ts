/** A simulator, a fresh test database behind a TCP proxy a test can cut (a database outage), and a scratch dir. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExchangeSimulator } from '../../src/simulator/index.ts';
import type { SimulatorOptions } from '../../src/simulator/index.ts';
import { createTestDatabase } from './db.ts';
import { TcpProxy } from './tcp-proxy.ts';

export interface ProxiedFixture {
  readonly sim: ExchangeSimulator;
  readonly db: { readonly url: string; drop(): Promise<void> };
  readonly proxy: TcpProxy;
  readonly dir: string;
  close(): Promise<void>;
}

export async function proxiedFixture(simOptions: SimulatorOptions, prefix: string): Promise<ProxiedFixture> {
  const sim = await ExchangeSimulator.start(simOptions);
  const db = await createTestDatabase();
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const u = new URL(db.url);
  const proxy = await TcpProxy.start(u.hostname, Number(u.port || 5432));
  return {
    sim, db, proxy, dir,
    async close() {
      await proxy.stop();
      await sim.stop();
      await db.drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
