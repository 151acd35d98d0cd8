/**
 * The S3 server the integration tests run against, and the four users of fixtures/s3/README.md.
 *
 * By default this is the local MinIO of `scripts/local-s3.sh`, whose `start` writes .state/s3-env
 * (`export NAME=value` lines). With S3GW_S3_EXTERNAL=1 every value comes from the environment instead,
 * so any S3 endpoint can replace MinIO; the file is then not read at all, so a stale file can never
 * mix its keys with another endpoint's.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file runs from dist/spec/helpers). */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const S3_ENV_FILE = path.join(ROOT, '.state', 's3-env');
const START = 'bash scripts/local-s3.sh start';

export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

export interface S3TestEnv {
  /** e.g. http://127.0.0.1:9000 (path-style addressing). */
  endpoint: string;
  region: string;
  /** s3:* everywhere. */
  admin: S3Credentials;
  /** Get/Put/DeleteObject, GetBucketLocation and s3:List* on every bucket; no AbortMultipartUpload. */
  least: S3Credentials;
  /** The same on example-bucket only, plus ListAllMyBuckets. */
  oneBucket: S3Credentials;
  /** Valid keys with no policy: every S3 request is AccessDenied. */
  noRights: S3Credentials;
  /** Where the values came from, for error messages. */
  source: string;
}

export const S3_USERS = { admin: 'ADMIN', least: 'LEAST', oneBucket: 'ONEBUCKET', noRights: 'NORIGHTS' } as const;

/** Every variable the tests need, in the order the script writes them. */
export const S3_ENV_NAMES: readonly string[] = [
  'S3GW_TEST_S3_ENDPOINT',
  'S3GW_TEST_REGION',
  ...Object.values(S3_USERS).flatMap((u) => [`S3GW_TEST_${u}_ACCESS_KEY_ID`, `S3GW_TEST_${u}_SECRET_ACCESS_KEY`]),
];

/** Parses `export NAME=value` / `NAME=value` lines; values may be single- or double-quoted. */
export function parseEnvFile(text: string): Map<string, string> {
  const vars = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!m) continue;
    let value = m[2]!;
    if (value.length >= 2 && (value[0] === "'" || value[0] === '"') && value.endsWith(value[0])) {
      value = value.slice(1, -1);
    }
    vars.set(m[1]!, value);
  }
  return vars;
}

/**
 * Reads the S3 endpoint, region and users. Throws, naming the command that fixes it, when the
 * local S3 was never started or a variable is missing; it does not check that the server answers
 * (see `requireS3`).
 */
export function loadS3Env(env: NodeJS.ProcessEnv = process.env, file = S3_ENV_FILE): S3TestEnv {
  let vars: Map<string, string>;
  let source: string;
  let fix: string;
  if (env.S3GW_S3_EXTERNAL === '1') {
    vars = new Map(S3_ENV_NAMES.filter((n) => env[n] !== undefined).map((n) => [n, env[n]!]));
    source = 'the environment (S3GW_S3_EXTERNAL=1)';
    fix = 'set them in the environment, or unset S3GW_S3_EXTERNAL to use the local MinIO';
  } else {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      throw new Error(
        `the local S3 is not set up: ${path.relative(ROOT, file) || file} does not exist. ` +
          `Run \`${START}\` (or set S3GW_S3_EXTERNAL=1 and the S3GW_TEST_* variables to use another S3 endpoint)`,
      );
    }
    vars = parseEnvFile(text);
    source = path.relative(ROOT, file) || file;
    fix = `run \`${START}\` to rewrite it`;
  }
  const missing = S3_ENV_NAMES.filter((n) => !vars.get(n));
  if (missing.length > 0) throw new Error(`${source} lacks ${missing.join(', ')}: ${fix}`);
  const user = (u: string): S3Credentials => ({
    accessKeyId: vars.get(`S3GW_TEST_${u}_ACCESS_KEY_ID`)!,
    secretAccessKey: vars.get(`S3GW_TEST_${u}_SECRET_ACCESS_KEY`)!,
  });
  return {
    endpoint: vars.get('S3GW_TEST_S3_ENDPOINT')!.replace(/\/+$/, ''),
    region: vars.get('S3GW_TEST_REGION')!,
    admin: user(S3_USERS.admin),
    least: user(S3_USERS.least),
    oneBucket: user(S3_USERS.oneBucket),
    noRights: user(S3_USERS.noRights),
    source,
  };
}

/**
 * `loadS3Env`, then one unsigned request to prove something answers at the endpoint (any HTTP
 * status will do: S3 answers an anonymous GET / with 403). A refused connection becomes an error
 * that names the start command instead of a failure deep inside a test.
 */
export async function requireS3(env: NodeJS.ProcessEnv = process.env): Promise<S3TestEnv> {
  const s3 = loadS3Env(env);
  try {
    const res = await fetch(s3.endpoint + '/', { signal: AbortSignal.timeout(5000) });
    await res.arrayBuffer();
  } catch (err) {
    const why = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
    const fix = env.S3GW_S3_EXTERNAL === '1' ? 'check S3GW_TEST_S3_ENDPOINT' : `run \`${START}\``;
    throw new Error(`no S3 server answers at ${s3.endpoint} (${why}, from ${s3.source}): ${fix}`);
  }
  return s3;
}
