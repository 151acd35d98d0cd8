import { readFileSync } from 'node:fs';
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
}

export class ConfigError extends Error {
  readonly code = 'ERR_CONFIG';
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

const MiB = 1024 * 1024;
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
  };
  if (!/^[a-z0-9-]+$/.test(config.s3Region)) throw new ConfigError(`--s3-region: not a region name: "${config.s3Region}"`);
  return { config, help, version };
}

function oneOf<T extends string>(flag: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) {
    throw new ConfigError(`${flag}: expected ${allowed.join(' or ')}, got "${value}"`);
  }
  return value as T;
}
