/**
 * The spill journal on a real filesystem that fills up (a small tmpfs mounted by the test; root only, skipped with
 * the reason elsewhere). A write that takes only part of the data is a failed append: the ticks stay in memory, the
 * partial bytes are truncated away, and nothing is counted that is not completely on disk.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Journal } from '../src/storage/spill.ts';
import { openStorage } from '../src/storage/storage.ts';
import type { Tick } from '../src/tick.ts';
import { countTicks, createTestDatabase, makeTick, testStorageConfig } from './helpers/db.ts';
import { captureLogs } from './helpers/log-capture.ts';
import { TcpProxy } from './helpers/tcp-proxy.ts';
import { mountTmpfs } from './helpers/tmpfs.ts';
import type { Tmpfs } from './helpers/tmpfs.ts';
import { sleep, waitFor } from './helpers/wait-for.ts';

const mounts: Tmpfs[] = [];
after(() => {
  for (const m of mounts) m.unmount();
});

/** A mounted tmpfs of `kib` KiB, or the reason this machine cannot give one. */
function smallDisk(kib: number): Tmpfs | { skip: string } {
  const m = mountTmpfs(kib);
  if (!('skip' in m)) mounts.push(m);
  return m;
}

async function segmentsOnDisk(dir: string): Promise<{ text: string; bytes: number }> {
  const names = (await readdir(dir)).filter((n) => n.endsWith('.ndjson')).sort();
  let text = '';
  for (const n of names) text += await readFile(join(dir, n), 'utf8');
  return { text, bytes: Buffer.byteLength(text) };
}

const batch = (from: number, n: number): Tick[] => Array.from({ length: n }, (_, i) => makeTick(from + i, { symbol: 'DISKUSDT' }));

const probe = mountTmpfs(64);
const skip = 'skip' in probe ? probe.skip : false;
if (!('skip' in probe)) probe.unmount();

test('journal on a full 64 KiB tmpfs: a short write fails the append, is truncated away, and frees no tick', { skip, timeout: 30_000 }, async () => {
  const disk = smallDisk(64);
  if ('skip' in disk) return;
  const dir = join(disk.dir, 'spill');
  const filler = join(disk.dir, 'filler');
  await writeFile(filler, Buffer.alloc(16 * 1024, 1));
  const logs = captureLogs();
  const journal = await Journal.open(dir, logs.logger);
  const committed: number[] = [];
  let failure: Error | undefined;
  let id = 1;
  // ~38 KB per append: the second one meets a nearly full disk and gets a short write before ENOSPC.
  for (let i = 0; i < 5 && !failure; i++) {
    const ticks = batch(id, 200);
    try {
      await journal.append(ticks, id);
      committed.push(...ticks.map((t) => t.tradeId));
    } catch (err) {
      failure = err as Error;
    }
    id += 200;
  }
  assert.ok(failure, 'the filesystem filled up');
  assert.equal((failure as { code?: string }).code, 'E_SPILL');
  assert.match(failure.message, /ENOSPC|short write/, failure.message);
  assert.ok(committed.length > 0, 'the first append fitted');

  const onDisk = await segmentsOnDisk(dir);
  assert.equal(onDisk.bytes, journal.bytes, 'the journal counts exactly the bytes on disk');
  assert.ok(onDisk.text.endsWith('\n'), 'no torn line left behind');
  assert.equal(onDisk.text.split('\n').length - 1, journal.ticks, 'one complete line per counted tick');
  assert.equal(journal.ticks, committed.length, 'only completed appends are counted');

  // The synchronous path of close() obeys the same rule.
  assert.throws(() => journal.appendSync(batch(id, 200), id), (err: Error) => /ENOSPC|short write/.test(err.message));
  assert.equal((await segmentsOnDisk(dir)).bytes, journal.bytes, 'appendSync left no partial bytes either');

  // Space comes back: the next append continues cleanly after the last complete line, and replay reads all of it.
  await unlink(filler);
  const more = batch(id + 1000, 20);
  await journal.append(more, id + 1000);
  committed.push(...more.map((t) => t.tradeId));
  const replayed: number[] = [];
  for (let seg = journal.nextForReplay(); seg; seg = journal.nextForReplay()) {
    for await (const chunk of journal.read(seg, 100)) replayed.push(...chunk.map((t) => t.tradeId));
    await journal.remove(seg);
  }
  assert.deepEqual(replayed, committed, 'every committed tick, once, in order; nothing else');
  assert.equal(logs.find((l) => String(l.msg).includes('unparseable')).length, 0, 'no line was half-written');
});

test('a torn tail left by a crash mid-append is truncated at open, never half-read', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mc-torn-'));
  try {
    const lines = batch(1, 3).map((t) => JSON.stringify(t) + '\n').join('');
    const torn = JSON.stringify(makeTick(4, { symbol: 'DISKUSDT' })).slice(0, 50);
    const path = join(dir, 'segment-000000000001.ndjson');
    await writeFile(path, lines + torn);
    const logs = captureLogs();
    const journal = await Journal.open(dir, logs.logger);
    assert.equal(journal.ticks, 3);
    assert.equal((await stat(path)).size, Buffer.byteLength(lines), 'file truncated after the last complete line');
    const warn = logs.find((l) => String(l.msg).includes('torn line'));
    assert.equal(warn.length, 1, 'the truncation is logged');
    assert.equal(warn[0]!.tornBytes, 50);
    const seg = journal.nextForReplay()!;
    const read: number[] = [];
    for await (const chunk of journal.read(seg, 10)) read.push(...chunk.map((t) => t.tradeId));
    assert.deepEqual(read, [1, 2, 3]);
    assert.equal(logs.find((l) => String(l.msg).includes('unparseable')).length, 0);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('database down and SPILL_DIR on a 512 KiB tmpfs at 2,000 ticks/s: disk fills, ticks wait in memory, none lost', { skip, timeout: 90_000 }, async () => {
  const disk = smallDisk(512);
  if ('skip' in disk) return;
  const tdb = await createTestDatabase('diskfull');
  const u = new URL(tdb.url);
  const proxy = await TcpProxy.start(u.hostname, Number(u.port || 5432));
  const logs = captureLogs('info');
  const spillDir = join(disk.dir, 'spill');
  const config = testStorageConfig(spillDir, {
    maxBufferedTicks: 2_000, batchMaxRows: 200, batchMaxAgeMs: 20, connectTimeoutMs: 500, acquireTimeoutMs: 500, statementTimeoutMs: 1_000,
  });
  const storage = await openStorage({ config, url: proxy.url(tdb.url), logger: logs.logger });
  let producing = true;
  try {
    // A producer that honours backpressure the way a connection does: pause on false, resume on drain.
    let id = 0;
    let paused = false;
    storage.sink.onDrain(() => (paused = false));
    let sawHeld = 0;
    const producer = (async () => {
      while (producing) {
        if (!paused) for (let k = 0; k < 20 && !paused; k++) if (!storage.sink.write(makeTick(++id, { symbol: 'FULLUSDT' }))) paused = true;
        const p = storage.pipeline();
        if (p.backpressure) sawHeld = Math.max(sawHeld, p.ticksAwaitingJournal);
        await sleep(10);
      }
    })();
    await waitFor(() => storage.pipeline().ticksStored > 500, 10_000, 'ticks stored before the outage');
    proxy.cut();
    await waitFor(() => logs.find((l) => String(l.msg).startsWith('SPILL JOURNAL UNWRITABLE')).length > 0, 20_000, 'the journal to fill the disk');
    await waitFor(() => storage.pipeline().backpressure, 5_000, 'backpressure on');
    await sleep(1_500);
    const during = storage.pipeline();
    proxy.restore();
    const restoredAt = Date.now();
    await waitFor(() => (storage.pipeline().lastWriteOkAt ?? 0) > restoredAt, 20_000, 'writes to succeed again');
    await waitFor(() => !storage.pipeline().backpressure, 20_000, 'backpressure off');
    await sleep(300);
    producing = false;
    await producer;
    await storage.flush();
    await waitFor(async () => (await segmentsOnDisk(spillDir)).bytes === 0, 20_000, 'journal replayed and removed');

    assert.equal(await countTicks(tdb.url, "symbol = 'FULLUSDT'"), id, `every one of the ${id} ticks stored`);
    const unwritable = logs.find((l) => String(l.msg).startsWith('SPILL JOURNAL UNWRITABLE'))[0]!;
    assert.match(JSON.stringify(unwritable.err), /ENOSPC|short write/, 'the log names the cause');
    assert.ok(typeof unwritable.heldInMemory === 'number' && (unwritable.heldInMemory as number) > 0, 'the log says how many ticks are held in memory');
    assert.equal((unwritable.journal as { dir: string }).dir, spillDir, 'and where the journal is');
    assert.ok(during.backpressure && during.ticksAwaitingJournal > 0 && during.ticksInMemory >= during.ticksAwaitingJournal,
      `the stats show the ticks held: ${JSON.stringify({ inMemory: during.ticksInMemory, awaiting: during.ticksAwaitingJournal })}`);
    assert.ok(sawHeld > 0);
    assert.equal(logs.find((l) => String(l.msg).includes('unparseable')).length, 0, 'no torn line was ever replayed');
  } finally {
    producing = false;
    proxy.restore();
    await storage.close({ deadlineMs: 3_000 });
    await proxy.stop();
    await tdb.drop();
  }
});
