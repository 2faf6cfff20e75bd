/**
 * `npm run bench:parse [-- --frames N] [--rounds R]`: CPU per trade frame of each exchange's classify(), the frame
 * template (src/exchanges/frame-templates.ts) against the general JSON path, on the same frames in one run. The
 * frames are the simulator's serialization, which is the exchanges' (test/frame-templates.test.ts); each round
 * alternates the two paths, so a busy machine slows both. Prints the median of the rounds, µs per frame.
 */
import { classifyBinanceFrame, classifyBinanceJson } from '../src/exchanges/binance/binance-mapper.ts';
import { classifyOkxFrame, classifyOkxJson } from '../src/exchanges/okx/okx-mapper.ts';
import type { FrameResult } from '../src/connection/feed.ts';
import { numberArg, parseArgs } from './lib/args.ts';

const args = parseArgs(process.argv.slice(2), []);
const FRAMES = numberArg(args, 'frames', 2_000);
const ROUNDS = numberArg(args, 'rounds', 15);
const AT = Date.now();

function binanceFrames(n: number): string[] {
  return Array.from({ length: n }, (_, i) => {
    const t = AT - 5_000 + i;
    return `{"stream":"btcusdt@trade","data":{"e":"trade","E":${t + 2},"s":"BTCUSDT","t":${3_000_000_000 + i},"p":"${29_000 + (i % 997)}.${String(i % 100).padStart(2, '0')}000000","q":"0.${String(1 + (i * 7919 % 99_999_999)).padStart(8, '0')}","T":${t},"m":${i % 3 === 0},"M":true}}`;
  });
}

function okxFrames(n: number): string[] {
  return Array.from({ length: n }, (_, i) => {
    const t = AT - 5_000 + i;
    return `{"arg":{"channel":"trades-all","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT","tradeId":"${700_000_000 + i}","px":"${29_000 + (i % 997)}.${i % 10}","sz":"0.${String(1 + (i * 7919 % 99_999)).padStart(5, '0')}","side":"${i % 3 === 0 ? 'sell' : 'buy'}","source":"0","ts":"${t}"}]}`;
  });
}

let sink = 0;
function timeOnce(classify: (text: string, at: number) => FrameResult, frames: readonly string[]): number {
  const t0 = process.hrtime.bigint();
  for (const f of frames) {
    const r = classify(f, AT);
    if (r.kind === 'ticks') sink += r.ticks.length;
    else throw new Error(`not a trade frame: ${JSON.stringify(r)}`);
  }
  return Number(process.hrtime.bigint() - t0) / 1_000 / frames.length;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

console.log(`frames per round: ${FRAMES}, rounds: ${ROUNDS} (median shown), node ${process.version}`);
console.log('exchange   template µs/frame   JSON path µs/frame   ratio');
for (const [name, frames, fast, json] of [
  ['binance', binanceFrames(FRAMES), classifyBinanceFrame, classifyBinanceJson],
  ['okx', okxFrames(FRAMES), classifyOkxFrame, classifyOkxJson],
] as const) {
  for (let i = 0; i < 3; i++) timeOnce(fast, frames), timeOnce(json, frames); // warm-up: both optimised
  const a: number[] = [];
  const b: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    a.push(timeOnce(fast, frames));
    b.push(timeOnce(json, frames));
  }
  const [ma, mb] = [median(a), median(b)];
  console.log(`${name.padEnd(10)} ${ma.toFixed(3).padStart(17)} ${mb.toFixed(3).padStart(20)} ${(ma / mb).toFixed(2).padStart(7)}`);
}
if (sink === 0) console.log('(no ticks?)');
