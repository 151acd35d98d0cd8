/**
 * moto's server mode with IAM enforcement, for tests of the STS path (scripts/moto.sh does the
 * work). `startMoto` reuses a moto that `scripts/moto.sh start` left running on the port, or
 * starts one and remembers to stop it in `stopMoto`. Either way moto has one IAM user whose
 * access key was made with the two unauthenticated calls moto allows; every later request,
 * ours included, is signature-checked.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const SCRIPT = path.join(ROOT, 'scripts', 'moto.sh');

export interface MotoUser {
  userName: string;
  arn: string;
  accessKeyId: string;
  secretAccessKey: string;
}

export interface MotoEnv {
  endpoint: string;
  port: number;
  region: string;
  /** The IAM user created at startup (no policies: sts:GetCallerIdentity needs none). */
  user: MotoUser;
  /** The account moto puts the user in. */
  account: string;
}

function motoPort(): number {
  const p = Number(process.env.S3GW_MOTO_PORT ?? 5000);
  if (!Number.isInteger(p) || p < 1 || p > 65535) throw new Error(`S3GW_MOTO_PORT is not a port: ${process.env.S3GW_MOTO_PORT}`);
  return p;
}

function run(cmd: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    // Asynchronous, so a test server in this process keeps answering meanwhile.
    execFile('bash', [SCRIPT, cmd], { env: { ...process.env, S3GW_MOTO_PORT: String(motoPort()) } }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, out: `${stdout}${stderr}`.trim() });
    });
  });
}

let startedByUs = false;

export async function startMoto(): Promise<MotoEnv> {
  const port = motoPort();
  const status = await run('status');
  if (status.code !== 0) {
    const r = await run('start');
    if (r.code !== 0) {
      throw new Error(`moto did not start (run 'bash scripts/moto.sh start' to see why):\n${r.out}`);
    }
    startedByUs = true;
  }
  const file = path.join(ROOT, '.state', `moto-${port}`, 'test-user.json');
  let raw: string;
  try {
    raw = await readFile(file, 'utf8');
  } catch {
    throw new Error(`${file} is missing although moto runs: run 'bash scripts/moto.sh restart'`);
  }
  const j = JSON.parse(raw) as MotoUser & { endpoint: string };
  const account = /^arn:aws:iam::(\d+):/.exec(j.arn)?.[1] ?? '';
  return {
    endpoint: j.endpoint,
    port,
    region: 'us-east-1',
    account,
    user: { userName: j.userName, arn: j.arn, accessKeyId: j.accessKeyId, secretAccessKey: j.secretAccessKey },
  };
}

/** Stops moto if `startMoto` started it; a moto started by hand stays up. */
export async function stopMoto(): Promise<void> {
  if (!startedByUs) return;
  startedByUs = false;
  await run('stop');
}
