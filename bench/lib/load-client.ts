/**
 * A load generator for bench/ops-load.ts: many SSH connections from one Node process, with the
 * tests' small SSH client (spec/helpers/raw-client.ts: curve25519, AES-GCM, password login) in
 * its load-generator mode (X25519 by OpenSSL, the host key signature not checked).
 *
 *   node dist/bench/lib/load-client.js handshakes PORT USER PASS SECONDS CONCURRENCY [EXPECT]
 *     connect, key exchange, password login, disconnect, over and over; prints one JSON line
 *     {count, errors, firstError, cpu} at the end. EXPECT 'refused' (PASS is a wrong secret):
 *     each login must fail; the gateway caches only successful IAM checks, so every one of
 *     these makes its full check against S3 (a signed ListBuckets that S3 answers 403).
 *   node dist/bench/lib/load-client.js idle PORT USER PASS N
 *     opens N sessions (login, session channel, sftp subsystem, SFTP INIT answered by VERSION),
 *     20 at a time; prints {opened, errors, firstError}; holds them until stdin closes.
 */
import { MSG } from '../../src/transport/constants.js';
import { SshWriter } from '../../src/wire/writer.js';
import { RawClient } from '../../spec/helpers/raw-client.js';

const [mode, portS, user, pass, a, b, expect = 'ok'] = process.argv.slice(2);
// Cheap client-side crypto: the generators share the cores with the gateway they measure.
RawClient.loadGenerator = true;
const port = Number(portS);

async function handshakes(seconds: number, concurrency: number): Promise<void> {
  const end = Date.now() + seconds * 1000;
  let count = 0;
  let errors = 0;
  let firstError: string | undefined;
  const cpu0 = process.cpuUsage();
  const loop = async () => {
    while (Date.now() < end) {
      try {
        if (expect === 'refused') {
          const c = await RawClient.connect(port);
          try {
            await c.handshake();
            await c.serviceRequest();
            if ((await c.authPassword(user!, pass!)).success) throw new Error('a wrong secret was accepted');
          } finally {
            c.socket.destroy();
          }
        } else {
          const c = await RawClient.login(port, user!, pass!);
          c.socket.destroy();
        }
        count++;
      } catch (err) {
        errors++;
        firstError ??= (err as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  const cpu = process.cpuUsage(cpu0);
  process.stdout.write(JSON.stringify({ count, errors, firstError, cpu: (cpu.user + cpu.system) / 1e6 }) + '\n');
}

async function idle(n: number): Promise<void> {
  const held: RawClient[] = [];
  let errors = 0;
  let firstError: string | undefined;
  let next = 0;
  const one = async () => {
    while (next < n) {
      next++;
      try {
        const c = await RawClient.login(port, user!, pass!);
        const ch = await c.openSession();
        if (!(await c.subsystem(ch, 'sftp'))) throw new Error('sftp subsystem refused');
        // SSH_FXP_INIT, version 3 (draft-ietf-secsh-filexfer-02 §4), then wait for VERSION.
        c.sendChannelData(ch.remoteId, new SshWriter(16).u32(5).u8(1).u32(3).bytes());
        for (;;) {
          const p = await c.recv('SFTP VERSION');
          if (p[0] === MSG.CHANNEL_DATA) break;
          if (p[0] === MSG.DISCONNECT) throw new Error('disconnected');
        }
        held.push(c);
      } catch (err) {
        errors++;
        firstError ??= (err as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: 20 }, one));
  process.stdout.write(JSON.stringify({ opened: held.length, errors, firstError }) + '\n');
  process.stdin.resume();
  process.stdin.on('end', () => {
    for (const c of held) c.socket.destroy();
    process.exit(0);
  });
}

if (mode === 'handshakes') void handshakes(Number(a), Number(b));
else if (mode === 'idle') void idle(Number(a));
else {
  process.stderr.write('usage: load-client.js handshakes|idle PORT USER PASS ...\n');
  process.exit(2);
}
