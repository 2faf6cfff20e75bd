/** Prints this process's RSS (bytes) after a second of idling: the bench's reference for the runtime's own memory. */
import { readFileSync } from 'node:fs';

setTimeout(() => {
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
  process.stdout.write(`${Number(m?.[1] ?? NaN) * 1024}\n`);
}, 1000);
