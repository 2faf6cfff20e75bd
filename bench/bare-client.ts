/**
 * Floor (1) of the benchmark: the cheapest possible consumer of the same stream - a bare `ws` client that only
 * `JSON.parse`s each frame (and counts the trades in it). Run as a child process by bench.ts so its CPU time can be
 * read from /proc. Configured by the same env names as the collector (BINANCE_WS_URL, OKX_WS_URL, *_SYMBOLS).
 */
import { openStreams, reportEvery, streamOptionsFromEnv } from './lib/stream-client.ts';

let frames = 0;
let trades = 0;
let sink = 0;

const client = openStreams({
  ...streamOptionsFromEnv(process.env),
  onFrame(_exchange, text) {
    if (text === 'pong') return;
    const msg = JSON.parse(text) as { data?: unknown };
    frames++;
    const data = msg.data;
    if (Array.isArray(data)) trades += data.length;
    else if (data !== undefined) trades++;
    sink ^= text.length; // keep the parse observable
  },
  onClose(exchange, code) {
    process.stderr.write(`bare-client: ${exchange} socket closed (${code})\n`);
    process.exit(1);
  },
});

// Once a second: the report is the only work besides the parse, kept rare so the floor stays a floor.
const timer = reportEvery(1000, () => ({ frames, trades, sink }));
process.on('SIGTERM', () => {
  clearInterval(timer);
  client.close();
  process.exit(0);
});
