/** Small helpers for the simulator's plain-HTTP endpoints. */
import type { IncomingMessage, ServerResponse } from 'node:http';

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json;charset=UTF-8', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export function clientIp(req: IncomingMessage): string {
  return req.socket.remoteAddress ?? 'unknown';
}

/** Reads a small JSON request body; rejects bodies over `maxBytes` or that are not JSON. */
export function readJsonBody(req: IncomingMessage, maxBytes = 64 * 1024): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > maxBytes) {
        reject(new Error(`body larger than ${maxBytes} bytes`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      if (text.trim() === '') return resolve({});
      try {
        resolve(JSON.parse(text));
      } catch {
        reject(new Error('body is not JSON'));
      }
    });
    req.on('error', reject);
  });
}

export type Param = { kind: 'absent' } | { kind: 'ok'; value: number } | { kind: 'bad'; raw: string };

/** A non-negative integer query parameter (digits only). An empty value counts as absent. */
export function uintParam(q: URLSearchParams, name: string, maxDigits = 19): Param {
  const raw = q.get(name);
  if (raw === null || raw === '') return { kind: 'absent' };
  if (!new RegExp(`^\\d{1,${maxDigits}}$`).test(raw)) return { kind: 'bad', raw };
  const value = Number(raw);
  return Number.isSafeInteger(value) ? { kind: 'ok', value } : { kind: 'bad', raw };
}
