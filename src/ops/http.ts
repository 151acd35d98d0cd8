import http from 'node:http';

/**
 * The instance's HTTP endpoint (`--health-listen`): GET /health for load-balancer health checks
 * and GET /metrics for Prometheus. Plain HTTP on its own port, so it works whatever the SSH port
 * expects (a PROXY header, for one).
 *
 * It reads no request bodies, answers only GET and HEAD, and bounds what a client can hold: a
 * few seconds for the headers, a small socket count.
 */
export interface HealthSource {
  /** 'ok' while serving; otherwise the reason (draining, starting). */
  health(): 'ok' | string;
  /** The Prometheus text (merged from the workers under --workers N). */
  metrics(): Promise<string> | string;
}

export function createHealthServer(source: HealthSource): http.Server {
  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    if (url === '/health' || url === '/healthz') {
      const state = source.health();
      res.writeHead(state === 'ok' ? 200 : 503, { 'content-type': 'text/plain', 'cache-control': 'no-store' }).end(state + '\n');
      return;
    }
    if (url === '/metrics') {
      Promise.resolve()
        .then(() => source.metrics())
        .then(
          (text) => res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'cache-control': 'no-store' }).end(text),
          (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics unavailable: ${err.message}\n`),
        );
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  });
  server.headersTimeout = 5_000;
  server.requestTimeout = 10_000;
  server.keepAliveTimeout = 5_000;
  server.maxHeadersCount = 50;
  server.maxConnections = 64;
  return server;
}
