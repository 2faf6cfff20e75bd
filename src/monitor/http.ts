/**
 * The operations endpoint on node:http: /metrics (Prometheus text), /healthz (200 while the event loop runs) and
 * /readyz (200 only when ready, else 503 with what is not). Stopping closes every keep-alive connection too.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Logger } from '../logger.ts';

export interface Readiness {
  readonly ready: boolean;
  readonly reasons: string[];
}

export interface OpsServerOptions {
  readonly host: string;
  /** 0 asks the OS for a free port. */
  readonly port: number;
  readonly registry: Registry;
  readonly readiness: () => Readiness & Record<string, unknown>;
  readonly logger: Logger;
}

export interface OpsServer {
  readonly port: number;
  close(): Promise<void>;
}

function send(res: ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, { 'Content-Type': contentType, 'Cache-Control': 'no-store' }).end(body);
}

const JSON_TYPE = 'application/json; charset=utf-8';

async function route(opts: OpsServerOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = (req.url ?? '/').split('?')[0];
  if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, JSON_TYPE, JSON.stringify({ error: 'method not allowed' }));
  switch (path) {
    case '/metrics':
      return send(res, 200, opts.registry.contentType, await opts.registry.metrics());
    case '/healthz':
      return send(res, 200, JSON_TYPE, JSON.stringify({ ok: true }));
    case '/readyz': {
      const r = opts.readiness();
      return send(res, r.ready ? 200 : 503, JSON_TYPE, JSON.stringify(r));
    }
    default:
      return send(res, 404, JSON_TYPE, JSON.stringify({ error: 'not found', paths: ['/metrics', '/healthz', '/readyz'] }));
  }
}

export async function startOpsServer(opts: OpsServerOptions): Promise<OpsServer> {
  const server: Server = createServer((req, res) => {
    route(opts, req, res).catch((err: unknown) => {
      opts.logger.error({ err, url: req.url }, 'ops endpoint failed');
      if (!res.headersSent) send(res, 500, JSON_TYPE, JSON.stringify({ error: 'internal error' }));
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 5_000;
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => opts.logger.error({ err }, 'ops server error'));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
