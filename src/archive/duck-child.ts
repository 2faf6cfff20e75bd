/**
 * The child process behind duck-remote.ts: one in-process DuckDB session, driven over the IPC channel. It exits when
 * told to close or when its parent goes away (the channel disconnects), so it never outlives the collector.
 */
import { openDuck } from './duck.ts';
import type { Duck } from './duck.ts';
import type { DuckReply, DuckRequest } from './duck-remote.ts';

let duck: Duck | undefined;

function reply(r: DuckReply): void {
  process.send?.(r);
}

async function handle(m: DuckRequest): Promise<void> {
  try {
    switch (m.op) {
      case 'open':
        duck = await openDuck(m.opts);
        return reply({ id: m.id, value: null });
      case 'run':
        return reply({ id: m.id, value: await duck!.run(m.sql) });
      case 'rows':
        return reply({ id: m.id, value: await duck!.rows(m.sql) });
      case 'close':
        await duck?.close();
        reply({ id: m.id, value: null });
        process.disconnect();
        return;
    }
  } catch (err) {
    reply({ id: m.id, error: err instanceof Error ? err.message : String(err) });
  }
}

process.on('message', (m: DuckRequest) => void handle(m));
process.on('disconnect', () => {
  void duck?.close().finally(() => process.exit(0));
});
