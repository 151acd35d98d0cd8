import { readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { CIPHERS, MACS } from './transport/cipher/index.js';
import { KEX_METHODS } from './transport/kex/index.js';
import { DEFAULT_CIPHERS, DEFAULT_KEX, DEFAULT_MACS, SHA1_MACS } from './transport/algorithms.js';

/**
 * The gateway's configuration, from (highest first) command-line flags, S3GW_* environment
 * variables, a JSON config file (--config), and defaults. Every setting is validated at
 * startup; a bad one fails with a ConfigError that names it.
 */
export interface Config {
  listenHost: string;
  listenPort: number;
  hostKeys: string[];
  stateDir: string;
  s3Endpoint: string | undefined;
  s3Region: string;
  s3PathStyle: boolean;
  sse: { mode: 'none' | 'AES256' | 'aws:kms'; kmsKeyId?: string };
  partSize: number;
  /** S3's part-count limit; lowered only to reach the large-upload paths in tests. */
  maxParts: number;
  /** The largest object an upload may make. */
  maxObjectSize: number;
  /** The AWS SDK's own flexible checksums (requestChecksumCalculation/responseChecksumValidation). */
  s3Checksums: 'WHEN_REQUIRED' | 'WHEN_SUPPORTED';
  /** The whole-file checksum each upload computes and stores. */
  uploadChecksum: 'crc32' | 'none';
  /** What an upload the client abandoned leaves: 'keep' what arrived when that destroys nothing, or 'discard'. */
  partialUploads: 'keep' | 'discard';
  authMode: 'auto' | 'sts' | 's3';
  stsEndpoint: string | undefined;
  kex: string[];
  ciphers: string[];
  macs: string[];
  allowSshRsaSha1: boolean;
  allowSha1Mac: boolean;
  logLevel: 'debug' | 'info' | 'warn' | 'error';

  // ---- operations (issue 6; docs/operations.md)
  /** Where audit records go: '-' (stdout), a file path (appended), or 'none'. */
  auditLog: string;
  /** CloudWatch Logs group for audit records; undefined keeps them local only. */
  cloudwatchLogGroup: string | undefined;
  /** CloudWatch Logs endpoint (tests: moto); undefined means AWS. */
  cloudwatchEndpoint: string | undefined;
  /** Region of the log group (default: the S3 region). */
  cloudwatchRegion: string;
  /** This instance's name in audit records and its CloudWatch stream (default: the host name). */
  instanceId: string;
  /** Worker processes sharing the listen socket; 1 runs everything in one process. */
  workers: number;
  /** Expect a PROXY protocol v1 or v2 header on every connection (only from trustedProxies). */
  proxyProtocol: boolean;
  /** CIDRs allowed to send PROXY headers. */
  trustedProxies: string[];
  /** HTTP listener for /health and /metrics; undefined: none. */
  healthListen: { host: string; port: number } | undefined;
  /** How long SIGTERM waits for running transfers before closing them. */
  drainTimeoutMs: number;
  /** Connections open at once, in total (per instance, all workers together). */
  maxConnections: number;
  /** Connections open at once from one client address. */
  maxConnectionsPerAddress: number;
  /** sshd's MaxStartups start:rate:full for connections not yet authenticated. */
  maxStartups: { start: number; rate: number; full: number };
  /** A connection with no channel traffic this long is closed; 0 disables. */
  idleTimeoutMs: number;
  /** Time from accept to a successful login. */
  loginGraceMs: number;
  /** Failed logins from one address within lockoutWindowMs that lock the address out; 0 disables. */
  lockoutFailures: number;
  lockoutWindowMs: number;
  /** How long a locked-out address is refused. */
  lockoutDurationMs: number;
  /** Channels (sessions) per connection. */
  maxChannels: number;
  /** Open SFTP handles per session. */
  maxHandles: number;
  /**
   * A pending multipart upload of a key with no part stored for this long is taken for one
   * whose gateway died (SIGKILL, lost instance) and aborted when that key is next uploaded.
   */
  staleUploadAgeMs: number;
  /** Run as root (uid 0) anyway. */
  allowRoot: boolean;
}

export class ConfigError extends Error {
  readonly code = 'ERR_CONFIG';
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

const MiB = 1024 * 1024;
/** The CloudWatch Logs group the docs and the deployment templates use. */
export const DEFAULT_LOG_GROUP = '/s3gw/audit';
const GiB = 1024 * MiB;

interface Setting {
  flag: string;
  env: string;
  key: string;
  type: 'string' | 'boolean';
  multiple?: boolean;
  arg?: string;
  help: string;
}

/** One table drives flags, environment variables, config-file keys and --help. */
const SETTINGS: Setting[] = [
  { flag: 'listen', env: 'S3GW_LISTEN', key: 'listen', type: 'string', arg: 'HOST:PORT', help: 'address to listen on (default 0.0.0.0:2222)' },
  { flag: 'host-key', env: 'S3GW_HOST_KEY', key: 'hostKeys', type: 'string', multiple: true, arg: 'FILE', help: 'SSH host key file, repeatable (env: comma-separated); default: one ed25519 key generated into the state directory' },
  { flag: 'state-dir', env: 'S3GW_STATE_DIR', key: 'stateDir', type: 'string', arg: 'DIR', help: 'where a generated host key is kept (default .state)' },
  { flag: 's3-endpoint', env: 'S3GW_S3_ENDPOINT', key: 's3Endpoint', type: 'string', arg: 'URL', help: 'S3 endpoint for S3-compatible stores (default: AWS)' },
  { flag: 's3-region', env: 'S3GW_S3_REGION', key: 's3Region', type: 'string', arg: 'REGION', help: 'region (default AWS_REGION, else us-east-1); other regions are discovered per bucket' },
  { flag: 's3-path-style', env: 'S3GW_S3_PATH_STYLE', key: 's3PathStyle', type: 'boolean', help: 'path-style addressing (http://host/bucket/key), as most S3-compatible stores need' },
  { flag: 'sse', env: 'S3GW_SSE', key: 'sse', type: 'string', arg: 'MODE', help: 'server-side encryption for uploads: none, AES256 or aws:kms[:KEY-ID] (default AES256)' },
  { flag: 'part-size', env: 'S3GW_PART_SIZE', key: 'partSize', type: 'string', arg: 'SIZE', help: 'multipart part size, 5MiB..5GiB (default 5MiB)' },
  { flag: 'max-parts', env: 'S3GW_MAX_PARTS', key: 'maxParts', type: 'string', arg: 'N', help: "S3's parts per upload, 2..10000 (default 10000; lower it only to test large-upload paths)" },
  { flag: 'max-object-size', env: 'S3GW_MAX_OBJECT_SIZE', key: 'maxObjectSize', type: 'string', arg: 'SIZE', help: "largest object an upload may make (default 5TiB, S3-compatible stores' limit; AWS allows up to 48.8TiB)" },
  { flag: 's3-checksums', env: 'S3GW_S3_CHECKSUMS', key: 's3Checksums', type: 'string', arg: 'WHEN', help: "the AWS SDK's own request checksums: when_required or when_supported (default when_required; some stores refuse the SDK's trailers)" },
  { flag: 'upload-checksum', env: 'S3GW_UPLOAD_CHECKSUM', key: 'uploadChecksum', type: 'string', arg: 'ALG', help: 'whole-file checksum computed while uploading and stored with the object: crc32 or none (default crc32)' },
  { flag: 'partial-uploads', env: 'S3GW_PARTIAL_UPLOADS', key: 'partialUploads', type: 'string', arg: 'MODE', help: 'an upload cut off before CLOSE: keep (what arrived, for resume, when no file is replaced) or discard (default keep)' },
  { flag: 'auth-mode', env: 'S3GW_AUTH_MODE', key: 'authMode', type: 'string', arg: 'MODE', help: 'how keys are checked: auto, sts (GetCallerIdentity) or s3 (a signed S3 request) (default auto)' },
  { flag: 'sts-endpoint', env: 'S3GW_STS_ENDPOINT', key: 'stsEndpoint', type: 'string', arg: 'URL', help: 'STS endpoint (default: AWS when no S3 endpoint is set)' },
  { flag: 'kex', env: 'S3GW_KEX', key: 'kex', type: 'string', arg: 'LIST', help: 'key exchange algorithms, comma-separated, in preference order' },
  { flag: 'ciphers', env: 'S3GW_CIPHERS', key: 'ciphers', type: 'string', arg: 'LIST', help: 'ciphers, comma-separated' },
  { flag: 'macs', env: 'S3GW_MACS', key: 'macs', type: 'string', arg: 'LIST', help: 'MACs, comma-separated' },
  { flag: 'allow-ssh-rsa-sha1', env: 'S3GW_ALLOW_SSH_RSA_SHA1', key: 'allowSshRsaSha1', type: 'boolean', help: 'also offer ssh-rsa (SHA-1) signatures, for old JSch and SSH.NET' },
  { flag: 'allow-sha1-mac', env: 'S3GW_ALLOW_SHA1_MAC', key: 'allowSha1Mac', type: 'boolean', help: 'also offer hmac-sha1 MACs, for very old clients' },
  { flag: 'log-level', env: 'S3GW_LOG_LEVEL', key: 'logLevel', type: 'string', arg: 'LEVEL', help: 'debug, info, warn or error (default info)' },
  { flag: 'audit-log', env: 'S3GW_AUDIT_LOG', key: 'auditLog', type: 'string', arg: '-|FILE|none', help: 'audit records, one JSON object per line: - for stdout, a file to append to, or none (default -)' },
  { flag: 'cloudwatch-log-group', env: 'S3GW_CLOUDWATCH_LOG_GROUP', key: 'cloudwatchLogGroup', type: 'string', arg: 'NAME', help: `also send audit records to this CloudWatch Logs group, one stream per instance (suggested: ${DEFAULT_LOG_GROUP})` },
  { flag: 'cloudwatch-endpoint', env: 'S3GW_CLOUDWATCH_ENDPOINT', key: 'cloudwatchEndpoint', type: 'string', arg: 'URL', help: 'CloudWatch Logs endpoint (default: AWS)' },
  { flag: 'cloudwatch-region', env: 'S3GW_CLOUDWATCH_REGION', key: 'cloudwatchRegion', type: 'string', arg: 'REGION', help: 'region of the log group (default: --s3-region)' },
  { flag: 'instance-id', env: 'S3GW_INSTANCE_ID', key: 'instanceId', type: 'string', arg: 'NAME', help: 'name of this instance in audit records and its log stream (default: the host name)' },
  { flag: 'workers', env: 'S3GW_WORKERS', key: 'workers', type: 'string', arg: 'N', help: 'worker processes sharing the listen socket, 1..256 (default: the number of cores)' },
  { flag: 'proxy-protocol', env: 'S3GW_PROXY_PROTOCOL', key: 'proxyProtocol', type: 'boolean', help: 'expect a PROXY protocol v1 or v2 header on each connection (needs --trusted-proxy)' },
  { flag: 'trusted-proxy', env: 'S3GW_TRUSTED_PROXY', key: 'trustedProxies', type: 'string', multiple: true, arg: 'CIDR', help: 'address range allowed to send PROXY headers, repeatable (env: comma-separated)' },
  { flag: 'health-listen', env: 'S3GW_HEALTH_LISTEN', key: 'healthListen', type: 'string', arg: 'HOST:PORT', help: 'HTTP listener for /health and /metrics (default: none)' },
  { flag: 'drain-timeout', env: 'S3GW_DRAIN_TIMEOUT', key: 'drainTimeout', type: 'string', arg: 'DURATION', help: 'on SIGTERM, how long running transfers may go on before they are closed (default 120s)' },
  { flag: 'max-connections', env: 'S3GW_MAX_CONNECTIONS', key: 'maxConnections', type: 'string', arg: 'N', help: 'connections open at once (default 4096)' },
  { flag: 'max-connections-per-address', env: 'S3GW_MAX_CONNECTIONS_PER_ADDRESS', key: 'maxConnectionsPerAddress', type: 'string', arg: 'N', help: 'connections open at once from one client address (default 100)' },
  { flag: 'max-startups', env: 'S3GW_MAX_STARTUPS', key: 'maxStartups', type: 'string', arg: 'START:RATE:FULL', help: "connections not yet logged in, as sshd's MaxStartups: from START refuse RATE % rising to all at FULL (default 10:30:100)" },
  { flag: 'idle-timeout', env: 'S3GW_IDLE_TIMEOUT', key: 'idleTimeout', type: 'string', arg: 'DURATION', help: 'close a logged-in connection with no session traffic for this long; 0 for never (default 30m)' },
  { flag: 'login-grace', env: 'S3GW_LOGIN_GRACE', key: 'loginGrace', type: 'string', arg: 'DURATION', help: 'time from connect to a successful login (default 60s)' },
  { flag: 'lockout-failures', env: 'S3GW_LOCKOUT_FAILURES', key: 'lockoutFailures', type: 'string', arg: 'N', help: 'failed logins from one address within --lockout-window that lock it out; 0 for never (default 10)' },
  { flag: 'lockout-window', env: 'S3GW_LOCKOUT_WINDOW', key: 'lockoutWindow', type: 'string', arg: 'DURATION', help: 'window in which failed logins are counted (default 10m)' },
  { flag: 'lockout-duration', env: 'S3GW_LOCKOUT_DURATION', key: 'lockoutDuration', type: 'string', arg: 'DURATION', help: 'how long a locked-out address is refused (default 15m)' },
  { flag: 'max-channels', env: 'S3GW_MAX_CHANNELS', key: 'maxChannels', type: 'string', arg: 'N', help: 'sessions (channels) per connection (default 10)' },
  { flag: 'max-handles', env: 'S3GW_MAX_HANDLES', key: 'maxHandles', type: 'string', arg: 'N', help: 'open SFTP files and directories per session (default 64)' },
  { flag: 'stale-upload-age', env: 'S3GW_STALE_UPLOAD_AGE', key: 'staleUploadAge', type: 'string', arg: 'DURATION', help: "a key's pending multipart upload with no part stored for this long is aborted when the key is next uploaded (default 1h)" },
  { flag: 'allow-root', env: 'S3GW_ALLOW_ROOT', key: 'allowRoot', type: 'boolean', help: 'run even as root (refused by default)' },
];

export function helpText(): string {
  const lines = [
    'Usage: s3gw [options]',
    '',
    'An SFTP gateway to S3. Users log in with an AWS access key ID as user name and the',
    'secret access key as password; every S3 call is signed with their own keys.',
    '',
    'Options (each also as an S3GW_* environment variable or a key in the --config file):',
  ];
  const rows = SETTINGS.map((s) => [`  --${s.flag}${s.arg ? ' ' + s.arg : ''}`, s.help, s.env] as const);
  rows.push(['  --config FILE', 'JSON file with settings by key (listen, hostKeys, s3Endpoint, ...)', 'S3GW_CONFIG']);
  rows.push(['  --help', 'this text', '']);
  rows.push(['  --version', 'print the version', '']);
  const w = Math.max(...rows.map((r) => r[0].length)) + 2;
  for (const [flag, help, env] of rows) lines.push(flag.padEnd(w) + help + (env ? ` [${env}]` : ''));
  return lines.join('\n') + '\n';
}

type Raw = Record<string, unknown>;

/** Parses argv and env into a raw settings object keyed by Setting.key. */
function gather(argv: string[], env: NodeJS.ProcessEnv): { raw: Raw; help: boolean; version: boolean } {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> = {
    config: { type: 'string' },
    help: { type: 'boolean' },
    version: { type: 'boolean' },
  };
  for (const s of SETTINGS) options[s.flag] = s.multiple ? { type: s.type, multiple: true } : { type: s.type };
  let values: Record<string, unknown>;
  try {
    ({ values } = parseArgs({ args: argv, options, strict: true, allowPositionals: false }));
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
  const raw: Raw = {};
  const file = (values.config as string | undefined) ?? env.S3GW_CONFIG;
  if (file) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new ConfigError(`--config ${file}: ${(err as Error).message}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new ConfigError(`--config ${file}: must hold a JSON object`);
    }
    const known = new Set(SETTINGS.map((s) => s.key));
    for (const [k, v] of Object.entries(parsed)) {
      if (!known.has(k)) throw new ConfigError(`--config ${file}: unknown setting "${k}"`);
      raw[k] = v;
    }
  }
  for (const s of SETTINGS) {
    const e = env[s.env];
    if (e !== undefined && e !== '') {
      if (s.type === 'boolean') raw[s.key] = parseBool(s.env, e);
      else raw[s.key] = s.multiple ? e.split(',').map((x) => x.trim()).filter(Boolean) : e;
    }
    const v = values[s.flag];
    if (v !== undefined) raw[s.key] = v;
  }
  return { raw, help: values.help === true, version: values.version === true };
}

function parseBool(name: string, v: string): boolean {
  if (/^(1|true|yes|on)$/i.test(v)) return true;
  if (/^(0|false|no|off)$/i.test(v)) return false;
  throw new ConfigError(`${name}: expected true or false, got "${v}"`);
}

/** "8MiB", "5M", "1g", "5242880" → bytes. */
export function parseSize(name: string, v: unknown): number {
  if (typeof v === 'number' && Number.isSafeInteger(v) && v > 0) return v;
  const m = typeof v === 'string' ? /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*$/i.exec(v) : null;
  if (!m) throw new ConfigError(`${name}: expected a size such as 8MiB, got "${String(v)}"`);
  const mult = { '': 1, k: 1024, m: MiB, g: GiB, t: 1024 * GiB }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g' | 't'];
  return Math.round(Number(m[1]) * mult);
}

function list(name: string, v: unknown, known: readonly string[], fallback: readonly string[]): string[] {
  if (v === undefined) return [...fallback];
  const items = Array.isArray(v) ? v.map(String) : String(v).split(',').map((x) => x.trim()).filter(Boolean);
  if (items.length === 0) throw new ConfigError(`${name}: the list is empty`);
  for (const a of items) {
    if (!known.includes(a)) throw new ConfigError(`${name}: unsupported algorithm "${a}" (supported: ${known.join(', ')})`);
  }
  return items;
}

function url(name: string, v: unknown): string | undefined {
  if (v === undefined) return undefined;
  const s = String(v);
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    throw new ConfigError(`${name}: not a URL: "${s}"`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new ConfigError(`${name}: must be an http or https URL`);
  return s.replace(/\/+$/, '');
}

export interface ParsedArgs {
  config: Config;
  help: boolean;
  version: boolean;
}

export function loadConfig(argv: string[], env: NodeJS.ProcessEnv = process.env): ParsedArgs {
  const { raw, help, version } = gather(argv, env);
  const listen = String(raw.listen ?? '0.0.0.0:2222');
  const lm = /^(.*):(\d+)$/.exec(listen);
  const port = lm ? Number(lm[2]) : NaN;
  if (!lm || !(port >= 0 && port <= 65535)) throw new ConfigError(`--listen: expected HOST:PORT, got "${listen}"`);
  const host = lm[1]!.replace(/^\[(.*)\]$/, '$1') || '0.0.0.0';

  const sseRaw = String(raw.sse ?? 'AES256');
  let sse: Config['sse'];
  if (sseRaw === 'none' || sseRaw === 'AES256') sse = { mode: sseRaw };
  else if (sseRaw === 'aws:kms') sse = { mode: 'aws:kms' };
  else if (sseRaw.startsWith('aws:kms:') && sseRaw.length > 8) sse = { mode: 'aws:kms', kmsKeyId: sseRaw.slice(8) };
  else throw new ConfigError(`--sse: expected none, AES256 or aws:kms[:KEY-ID], got "${sseRaw}"`);

  const partSize = raw.partSize === undefined ? 5 * MiB : parseSize('--part-size', raw.partSize);
  if (partSize < 5 * MiB || partSize > 5 * GiB) {
    throw new ConfigError(`--part-size: must be between 5MiB and 5GiB (S3's part limits), got ${partSize} bytes`);
  }
  const maxPartsRaw = String(raw.maxParts ?? '10000');
  const maxParts = /^\d{1,5}$/.test(maxPartsRaw) ? Number(maxPartsRaw) : NaN;
  if (!(maxParts >= 2 && maxParts <= 10_000)) {
    throw new ConfigError(`--max-parts: must be a whole number from 2 to 10000, got "${maxPartsRaw}"`);
  }
  const maxObjectSize = raw.maxObjectSize === undefined ? 5 * 1024 * GiB : parseSize('--max-object-size', raw.maxObjectSize);
  if (maxObjectSize < 5 * MiB || maxObjectSize > 10_000 * 5 * GiB) {
    throw new ConfigError(`--max-object-size: must be between 5MiB and 48.8TiB (10,000 parts of 5GiB), got ${maxObjectSize} bytes`);
  }
  const s3Checksums = oneOf('--s3-checksums', String(raw.s3Checksums ?? 'when_required').toLowerCase(), ['when_required', 'when_supported'] as const);
  const uploadChecksum = oneOf('--upload-checksum', String(raw.uploadChecksum ?? 'crc32').toLowerCase(), ['crc32', 'none'] as const);
  const partialUploads = oneOf('--partial-uploads', String(raw.partialUploads ?? 'keep'), ['keep', 'discard'] as const);
  const authMode = String(raw.authMode ?? 'auto');
  if (authMode !== 'auto' && authMode !== 'sts' && authMode !== 's3') {
    throw new ConfigError(`--auth-mode: expected auto, sts or s3, got "${authMode}"`);
  }
  const logLevel = String(raw.logLevel ?? 'info');
  if (!['debug', 'info', 'warn', 'error'].includes(logLevel)) {
    throw new ConfigError(`--log-level: expected debug, info, warn or error, got "${logLevel}"`);
  }
  const hostKeys = raw.hostKeys === undefined ? [] : Array.isArray(raw.hostKeys) ? raw.hostKeys.map(String) : [String(raw.hostKeys)];
  const allowSha1Mac = raw.allowSha1Mac === true;
  const config: Config = {
    listenHost: host,
    listenPort: port,
    hostKeys,
    stateDir: String(raw.stateDir ?? '.state'),
    s3Endpoint: url('--s3-endpoint', raw.s3Endpoint),
    s3Region: String(raw.s3Region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1'),
    s3PathStyle: raw.s3PathStyle === true,
    sse,
    partSize,
    maxParts,
    maxObjectSize,
    s3Checksums: s3Checksums === 'when_required' ? 'WHEN_REQUIRED' : 'WHEN_SUPPORTED',
    uploadChecksum,
    partialUploads,
    authMode,
    stsEndpoint: url('--sts-endpoint', raw.stsEndpoint),
    kex: list('--kex', raw.kex, Object.keys(KEX_METHODS), DEFAULT_KEX),
    ciphers: list('--ciphers', raw.ciphers, Object.keys(CIPHERS), DEFAULT_CIPHERS),
    macs: list('--macs', raw.macs, Object.keys(MACS), allowSha1Mac ? [...DEFAULT_MACS, ...SHA1_MACS] : DEFAULT_MACS),
    allowSshRsaSha1: raw.allowSshRsaSha1 === true,
    allowSha1Mac,
    logLevel: logLevel as Config['logLevel'],
    auditLog: String(raw.auditLog ?? '-'),
    cloudwatchLogGroup: logGroup('--cloudwatch-log-group', raw.cloudwatchLogGroup),
    cloudwatchEndpoint: url('--cloudwatch-endpoint', raw.cloudwatchEndpoint),
    cloudwatchRegion: '',
    instanceId: instanceId(raw.instanceId),
    workers: count('--workers', raw.workers, os.availableParallelism(), 1, 256),
    proxyProtocol: raw.proxyProtocol === true,
    trustedProxies: strings(raw.trustedProxies).map((c) => cidr('--trusted-proxy', c)),
    healthListen: raw.healthListen === undefined ? undefined : hostPort('--health-listen', String(raw.healthListen)),
    drainTimeoutMs: duration('--drain-timeout', raw.drainTimeout, 120_000),
    maxConnections: count('--max-connections', raw.maxConnections, 4096, 1, 1_000_000),
    maxConnectionsPerAddress: count('--max-connections-per-address', raw.maxConnectionsPerAddress, 100, 1, 1_000_000),
    maxStartups: maxStartups(raw.maxStartups),
    idleTimeoutMs: duration('--idle-timeout', raw.idleTimeout, 30 * 60_000, true),
    loginGraceMs: duration('--login-grace', raw.loginGrace, 60_000),
    lockoutFailures: count('--lockout-failures', raw.lockoutFailures, 10, 0, 1_000_000),
    lockoutWindowMs: duration('--lockout-window', raw.lockoutWindow, 10 * 60_000),
    lockoutDurationMs: duration('--lockout-duration', raw.lockoutDuration, 15 * 60_000),
    maxChannels: count('--max-channels', raw.maxChannels, 10, 1, 1000),
    maxHandles: count('--max-handles', raw.maxHandles, 64, 1, 100_000),
    staleUploadAgeMs: duration('--stale-upload-age', raw.staleUploadAge, 3_600_000),
    allowRoot: raw.allowRoot === true,
  };
  config.cloudwatchRegion = raw.cloudwatchRegion === undefined ? config.s3Region : String(raw.cloudwatchRegion);
  if (config.proxyProtocol && config.trustedProxies.length === 0) {
    throw new ConfigError('--proxy-protocol: needs at least one --trusted-proxy CIDR (the load balancer\'s addresses)');
  }
  if (!/^[a-z0-9-]+$/.test(config.s3Region)) throw new ConfigError(`--s3-region: not a region name: "${config.s3Region}"`);
  if (!/^[a-z0-9-]+$/.test(config.cloudwatchRegion)) throw new ConfigError(`--cloudwatch-region: not a region name: "${config.cloudwatchRegion}"`);
  return { config, help, version };
}

function oneOf<T extends string>(flag: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) {
    throw new ConfigError(`${flag}: expected ${allowed.join(' or ')}, got "${value}"`);
  }
  return value as T;
}

function strings(v: unknown): string[] {
  if (v === undefined) return [];
  return (Array.isArray(v) ? v.map(String) : String(v).split(',')).map((x) => x.trim()).filter(Boolean);
}

/** A whole number in [min, max], or the fallback when unset. */
function count(flag: string, v: unknown, fallback: number, min: number, max: number): number {
  if (v === undefined) return fallback;
  const s = String(v).trim();
  const n = /^\d{1,9}$/.test(s) ? Number(s) : NaN;
  if (!(n >= min && n <= max)) throw new ConfigError(`${flag}: must be a whole number from ${min} to ${max}, got "${s}"`);
  return n;
}

/** "90s", "15m", "1h", "500ms", "2d" or plain seconds → milliseconds. */
export function parseDuration(flag: string, v: unknown): number {
  const s = String(v).trim();
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/i.exec(s);
  if (!m) throw new ConfigError(`${flag}: expected a duration such as 30s, 15m or 1h, got "${s}"`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? 's').toLowerCase() as 'ms' | 's' | 'm' | 'h' | 'd'];
  const ms = Math.round(Number(m[1]) * unit);
  if (!Number.isSafeInteger(ms) || ms > 2 ** 31 - 1) throw new ConfigError(`${flag}: too long: "${s}" (at most 24 days)`);
  return ms;
}

function duration(flag: string, v: unknown, fallback: number, zeroAllowed = false): number {
  if (v === undefined) return fallback;
  const ms = parseDuration(flag, v);
  if (ms === 0 && !zeroAllowed) throw new ConfigError(`${flag}: must be more than 0`);
  return ms;
}

function hostPort(flag: string, v: string): { host: string; port: number } {
  const m = /^(.*):(\d+)$/.exec(v);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !(port >= 0 && port <= 65535)) throw new ConfigError(`${flag}: expected HOST:PORT, got "${v}"`);
  return { host: m[1]!.replace(/^\[(.*)\]$/, '$1') || '0.0.0.0', port };
}

/** An IPv4 or IPv6 CIDR (a bare address means that one address), normalised to "addr/bits". */
function cidr(flag: string, v: string): string {
  const [addr = '', bits, extra] = v.split('/');
  const family = net.isIP(addr);
  const max = family === 4 ? 32 : 128;
  const n = bits === undefined ? max : /^\d{1,3}$/.test(bits) ? Number(bits) : NaN;
  if (family === 0 || extra !== undefined || !(n >= 0 && n <= max)) {
    throw new ConfigError(`${flag}: expected an address range such as 10.0.0.0/16, got "${v}"`);
  }
  return `${addr}/${n}`;
}

function maxStartups(v: unknown): Config['maxStartups'] {
  const s = String(v ?? '10:30:100').trim();
  const m = /^(\d{1,7})(?::(\d{1,3}):(\d{1,7}))?$/.exec(s);
  // sshd: a single number means start = full (refuse everything past it).
  const start = m ? Number(m[1]) : NaN;
  const rate = m?.[2] !== undefined ? Number(m[2]) : 100;
  const full = m?.[3] !== undefined ? Number(m[3]) : start;
  if (!m || start < 1 || rate < 1 || rate > 100 || full < start) {
    throw new ConfigError(`--max-startups: expected START:RATE:FULL with 1 <= START <= FULL and RATE 1..100, got "${s}"`);
  }
  return { start, rate, full };
}

/** CloudWatch Logs group names: 1-512 of [.-_/#A-Za-z0-9]. */
function logGroup(flag: string, v: unknown): string | undefined {
  if (v === undefined) return undefined;
  const s = String(v);
  if (!/^[.\-_/#A-Za-z0-9]{1,512}$/.test(s)) throw new ConfigError(`${flag}: not a log group name: "${s}"`);
  return s;
}

/** Instance names become CloudWatch stream names (no ':' or '*', 1-512 characters). */
function instanceId(v: unknown): string {
  const s = v === undefined ? os.hostname() : String(v);
  if (!/^[^:*\u0000-\u001f]{1,200}$/.test(s)) throw new ConfigError(`--instance-id: 1-200 characters, no ':' or '*', got "${s}"`);
  return s;
}
