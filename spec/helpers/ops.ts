/**
 * What the operations suites (limits, audit, HAProxy, drain, cluster) share: an audit sink that
 * keeps the records, a raw TCP look at what the server sends first, and the health port a
 * gateway process logged.
 */
import net from 'node:net';
import * as assert from 'uvu/assert';
import type { AuditRecord, AuditSink } from '../../src/audit/records.js';
import type { GatewayProcess } from './big-upload.js';

/** An audit sink that keeps every record, as JSON would carry it. */
export class KeptAudit implements AuditSink {
  records: AuditRecord[] = [];
  write(r: AuditRecord): void {
    this.records.push(JSON.parse(JSON.stringify(r)) as AuditRecord);
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** A raw TCP connection and the first line the server sends (its version, or a refusal). */
export function firstLine(port: number, timeoutMs = 10_000): Promise<{ line: string; socket: net.Socket }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`no line from the server; got ${JSON.stringify(buf)}`)), timeoutMs);
    socket.on('error', reject);
    socket.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        socket.removeAllListeners('data');
        resolve({ line: buf.slice(0, nl).replace(/\r$/, ''), socket });
      }
    });
  });
}

/** Resolves when the server closes the socket. */
export function closedBy(socket: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed) return resolve();
    socket.on('close', () => resolve());
    socket.resume();
  });
}

/** The --health-listen port a gateway process logged ("health and metrics on http://…"). */
export async function healthPortOf(gp: GatewayProcess): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const m = /health and metrics on http:\/\/127\.0\.0\.1:(\d+)/.exec(gp.logTail(200));
    if (m) return Number(m[1]);
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.unreachable(`no health port in the log\n${gp.logTail()}`);
  return 0;
}
