/**
 * A minimal subscriber to the simulator's (or the exchanges') trade streams, for the benchmark's floor and the
 * per-row-INSERT pattern: one `ws` socket per exchange, the same URLs and subscribe messages the collector uses,
 * each text frame handed to `onFrame`. No reconnects, no validation: a run aborts if a socket closes.
 */
import WebSocket from 'ws';
import { binanceStreamUrl } from '../../src/exchanges/binance/binance-feed.ts';
import { okxSubscribeMessages } from '../../src/exchanges/okx/okx-feed.ts';

export interface StreamClientOptions {
  readonly binanceWsUrl: string;
  readonly okxWsUrl: string;
  readonly binanceSymbols: readonly string[];
  readonly okxSymbols: readonly string[];
  onFrame(exchange: 'binance' | 'okx', text: string): void;
  onClose(exchange: 'binance' | 'okx', code: number): void;
}

export interface StreamClient {
  close(): void;
}

/** OKX closes a connection that sends nothing for 30 s. */
const OKX_PING_MS = 15_000;

export function openStreams(opts: StreamClientOptions): StreamClient {
  const sockets: WebSocket[] = [];
  const timers: NodeJS.Timeout[] = [];
  let closing = false;
  const wire = (exchange: 'binance' | 'okx', ws: WebSocket) => {
    sockets.push(ws);
    ws.on('message', (data, isBinary) => {
      if (!isBinary) opts.onFrame(exchange, data.toString());
    });
    ws.on('error', () => {});
    ws.on('close', (code) => {
      if (!closing) opts.onClose(exchange, code);
    });
  };
  if (opts.binanceSymbols.length > 0) {
    wire('binance', new WebSocket(binanceStreamUrl(opts.binanceWsUrl, opts.binanceSymbols), { perMessageDeflate: false }));
  }
  if (opts.okxSymbols.length > 0) {
    const ws = new WebSocket(`${opts.okxWsUrl}/ws/v5/business`, { perMessageDeflate: false });
    wire('okx', ws);
    ws.on('open', () => {
      for (const m of okxSubscribeMessages(opts.okxSymbols)) ws.send(m);
      timers.push(setInterval(() => ws.readyState === WebSocket.OPEN && ws.send('ping'), OKX_PING_MS));
    });
  }
  return {
    close() {
      closing = true;
      for (const t of timers) clearInterval(t);
      for (const s of sockets) s.terminate();
    },
  };
}

export function streamOptionsFromEnv(env: NodeJS.ProcessEnv): Omit<StreamClientOptions, 'onFrame' | 'onClose'> {
  const list = (v: string | undefined) => (v ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
  return {
    binanceWsUrl: env.BINANCE_WS_URL ?? '',
    okxWsUrl: env.OKX_WS_URL ?? '',
    binanceSymbols: list(env.BINANCE_SYMBOLS),
    okxSymbols: list(env.OKX_SYMBOLS),
  };
}

/** Prints `{"frames":n,"trades":n,...,"at":ms}` to stdout every `ms`, for the parent to read. */
export function reportEvery(ms: number, snapshot: () => Record<string, number>): NodeJS.Timeout {
  return setInterval(() => process.stdout.write(`${JSON.stringify({ ...snapshot(), at: Date.now() })}\n`), ms);
}
