import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import net from 'node:net';
import { inspect } from 'node:util';
import type { AuthContext } from '../../src/auth/authenticator.js';
import {
  IamCheckCache,
  IamPrincipal,
  IamServiceError,
  checkKeyShape,
  classifySdkError,
  createIamAuthenticator,
  resolveIamMode,
  type IamAuthenticatorOptions,
} from '../../src/auth/iam.js';
import { createLogger } from '../../src/log.js';
import { startMoto, stopMoto, type MotoEnv } from '../helpers/moto.js';
import { requireS3, type S3TestEnv } from '../helpers/s3-env.js';

const AWS_ID = 'AKIAIOSFODNN7EXAMPLE';
const AWS_SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';

function ctx(username: string): AuthContext {
  return { username, remoteAddress: '127.0.0.1', remotePort: 40000, clientVersion: 'SSH-2.0-test' };
}

/** A logger that keeps every line, so tests can look for secrets in it. */
function capture() {
  const lines: string[] = [];
  return { lines, log: createLogger('debug', (l) => lines.push(l)) };
}

function assertAbsent(haystack: string[], secrets: string[]): void {
  const all = haystack.join('\n');
  for (const s of secrets) assert.not.ok(all.includes(s), `a secret appears in: ${all.slice(0, 300)}`);
}

async function rejects(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  assert.unreachable('expected a rejection');
  throw new Error('unreachable');
}

/** A TCP server that accepts and never answers, counting connections. */
async function silentServer(): Promise<{ url: string; connections: () => number; close: () => Promise<void> }> {
  let n = 0;
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    n++;
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    connections: () => n,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        srv.close(() => r());
      }),
  };
}

/** A loopback port with nothing listening (bound, then released). */
async function closedPort(): Promise<string> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return `http://127.0.0.1:${port}`;
}

// ---------------------------------------------------------------------------------------------

const Shape = suite('iam key shape');

Shape('accepts AWS keys and MinIO-style keys', () => {
  assert.is(checkKeyShape(AWS_ID, AWS_SECRET), null);
  assert.is(checkKeyShape('minioadmin', 'minioadmin'), null);
  assert.is(checkKeyShape('abc', '12345678'), null);
  assert.is(checkKeyShape('least-user_1.x@example', 'p+ss/word~!'), null);
  assert.is(checkKeyShape('A'.repeat(128), 'x'.repeat(128)), null);
});

Shape('refuses access key IDs that are too short, too long or not printable ASCII', () => {
  for (const id of ['', 'ab', 'A'.repeat(129), 'AKIA EXAMPLE', 'AKIA\tX', 'AKIA\nX', 'AKIA\x00X', 'AKIA\x7fX', 'AKIAé00']) {
    assert.is(checkKeyShape(id, AWS_SECRET), 'malformed access key', JSON.stringify(id));
  }
});

Shape('refuses access key IDs with characters that would break the SigV4 credential', () => {
  for (const id of ['AKIA/2020', 'AKIA,X', 'AKIA=X', 'AKIA"X', 'AKIA\\X']) {
    assert.is(checkKeyShape(id, AWS_SECRET), 'malformed access key', id);
  }
});

Shape('refuses secrets that are too short, too long, or hold whitespace or control characters', () => {
  for (const s of ['', '1234567', 'x'.repeat(129), 'secret with space', 'secret\twith tab', 'secret\r\n', 'sécretsecret', 'a\x00bcdefgh']) {
    assert.is(checkKeyShape(AWS_ID, s), 'malformed secret', JSON.stringify(s));
  }
});

Shape.run();

// ---------------------------------------------------------------------------------------------

const Mode = suite('iam mode selection');

Mode('auto uses STS on AWS (no S3 endpoint)', () => {
  assert.is(resolveIamMode({ mode: 'auto' }), 'sts');
  assert.is(resolveIamMode({ mode: 'auto', endpoint: '' }), 'sts');
});

Mode('auto uses S3 with a custom S3 endpoint and no STS endpoint', () => {
  assert.is(resolveIamMode({ mode: 'auto', endpoint: 'http://127.0.0.1:9000' }), 's3');
});

Mode('auto uses STS when an STS endpoint is given, custom S3 endpoint or not', () => {
  assert.is(resolveIamMode({ mode: 'auto', endpoint: 'http://127.0.0.1:9000', stsEndpoint: 'http://127.0.0.1:5000' }), 'sts');
  assert.is(resolveIamMode({ mode: 'auto', stsEndpoint: 'http://127.0.0.1:5000' }), 'sts');
});

Mode('sts and s3 force the choice', () => {
  assert.is(resolveIamMode({ mode: 'sts', endpoint: 'http://127.0.0.1:9000' }), 'sts');
  assert.is(resolveIamMode({ mode: 's3' }), 's3');
  assert.is(resolveIamMode({ mode: 's3', stsEndpoint: 'http://127.0.0.1:5000' }), 's3');
});

Mode('offers password and keyboard-interactive, never publickey', () => {
  const a = createIamAuthenticator({ region: 'us-east-1', forcePathStyle: false, mode: 'auto', log: capture().log });
  assert.equal([...a.methods], ['password', 'keyboard-interactive']);
  assert.type(a.checkPassword, 'function');
  assert.is(a.checkPublicKey, undefined);
});

Mode.run();

// ---------------------------------------------------------------------------------------------

const Classify = suite('iam error classification');

const svc = (name: string, status: number, extra: object = {}) =>
  Object.assign(new Error('service said no'), { name, $fault: 'client', $metadata: { httpStatusCode: status }, ...extra });

Classify('credential errors reject', () => {
  for (const code of ['InvalidAccessKeyId', 'InvalidClientTokenId', 'SignatureDoesNotMatch']) {
    assert.equal(classifySdkError(svc(code, 403)), { kind: 'reject', code });
  }
});

Classify('AccessDenied proves the keys', () => {
  assert.equal(classifySdkError(svc('AccessDenied', 403)), { kind: 'proof', code: 'AccessDenied' });
});

Classify('an unnamed error takes the Code from the body', () => {
  assert.equal(classifySdkError(svc('UnknownError', 403, { Code: 'SignatureDoesNotMatch' })), {
    kind: 'reject',
    code: 'SignatureDoesNotMatch',
  });
});

Classify('server errors, clock skew, unknown codes and bare 403s are unavailable, never accepted', () => {
  for (const [name, status] of [
    ['InternalError', 500],
    ['ServiceUnavailable', 503],
    ['RequestTimeTooSkewed', 403],
    ['NoSuchBucket', 404],
    ['Forbidden', 403],
    ['NotImplemented', 501],
  ] as const) {
    const v = classifySdkError(svc(name, status));
    assert.is(v.kind, 'unavailable', name);
  }
});

Classify('an error without an HTTP status is a network failure', () => {
  const v = classifySdkError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }));
  assert.is(v.kind, 'unavailable');
  assert.match((v as { detail: string }).detail, 'ECONNREFUSED');
  assert.is(classifySdkError('a string').kind, 'unavailable');
  assert.is(classifySdkError(undefined).kind, 'unavailable');
});

Classify.run();

// ---------------------------------------------------------------------------------------------

const Principal = suite('iam principal');

const principal = () =>
  new IamPrincipal(AWS_ID, AWS_SECRET, { arn: 'arn:aws:iam::123456789012:user/alice', account: '123456789012', userId: 'AIDAEXAMPLE' });

Principal('holds the keys and the identity', () => {
  const p = principal();
  assert.is(p.accessKeyId, AWS_ID);
  assert.is(p.secretAccessKey, AWS_SECRET);
  assert.is(p.sessionToken, undefined);
  assert.is(p.arn, 'arn:aws:iam::123456789012:user/alice');
  assert.is(p.account, '123456789012');
  assert.is(p.userId, 'AIDAEXAMPLE');
  assert.equal(p.credentials(), { accessKeyId: AWS_ID, secretAccessKey: AWS_SECRET });
});

Principal('JSON, inspect, keys and spread never show the secret', () => {
  const p = principal();
  const views = [
    JSON.stringify(p),
    JSON.stringify({ nested: { p } }),
    inspect(p),
    inspect(p, { showHidden: true, getters: true, depth: Infinity }),
    inspect({ nested: [p] }, { showHidden: true, getters: true }),
    String(p),
    `${p}`,
    JSON.stringify({ ...p }),
    Object.keys(p).join(','),
    Object.getOwnPropertyNames(p).join(','),
    JSON.stringify(Object.entries(p)),
  ];
  assertAbsent(views, [AWS_SECRET]);
  assert.match(JSON.stringify(p), AWS_ID);
  assert.match(inspect(p), 'arn:aws:iam::123456789012:user/alice');
});

Principal('is frozen', () => {
  const p = principal() as unknown as Record<string, unknown>;
  assert.throws(() => {
    p.accessKeyId = 'other';
  });
  assert.is(p.accessKeyId, AWS_ID);
});

Principal.run();

// ---------------------------------------------------------------------------------------------

const Cache = suite('iam positive cache');

Cache('remembers a success for the same key and secret only', () => {
  const c = new IamCheckCache(60_000);
  c.set(AWS_ID, AWS_SECRET, { arn: 'a' }, 0);
  assert.equal(c.get(AWS_ID, AWS_SECRET, 1), { arn: 'a' });
  assert.is(c.get(AWS_ID, AWS_SECRET + 'x', 1), undefined);
  assert.is(c.get(AWS_ID, AWS_SECRET.slice(0, -1), 1), undefined);
  assert.is(c.get('AKIAOTHEROTHEROTHER0', AWS_SECRET, 1), undefined);
});

Cache('entries expire after the TTL', () => {
  const c = new IamCheckCache(1000);
  c.set(AWS_ID, AWS_SECRET, {}, 0);
  assert.ok(c.get(AWS_ID, AWS_SECRET, 999));
  assert.is(c.get(AWS_ID, AWS_SECRET, 1000), undefined);
  assert.is(c.size, 0);
});

Cache('a TTL of 0 disables it', () => {
  const c = new IamCheckCache(0);
  c.set(AWS_ID, AWS_SECRET, {}, 0);
  assert.is(c.get(AWS_ID, AWS_SECRET, 0), undefined);
  assert.is(c.size, 0);
});

Cache('is bounded, dropping the oldest entry', () => {
  const c = new IamCheckCache(60_000, 3);
  for (let i = 0; i < 5; i++) c.set(`KEY${i}`, AWS_SECRET, {}, 0);
  assert.is(c.size, 3);
  assert.is(c.get('KEY0', AWS_SECRET, 1), undefined);
  assert.ok(c.get('KEY4', AWS_SECRET, 1));
});

Cache('does not hold the secret in any visible form', () => {
  const c = new IamCheckCache(60_000);
  c.set(AWS_ID, AWS_SECRET, {}, 0);
  assertAbsent([inspect(c, { showHidden: true, depth: Infinity }), JSON.stringify(c)], [AWS_SECRET]);
});

Cache.run();

// ---------------------------------------------------------------------------------------------

const Offline = suite('iam without a reachable service');

Offline('a malformed key is rejected without any connection', async () => {
  const s = await silentServer();
  const { lines, log } = capture();
  try {
    const a = createIamAuthenticator({ endpoint: s.url, stsEndpoint: s.url, region: 'us-east-1', forcePathStyle: true, mode: 'sts', log, timeoutMs: 60_000 });
    assert.equal(await a.checkPassword!(ctx('AKIA EXAMPLE'), AWS_SECRET), { ok: false, reason: 'malformed access key' });
    assert.equal(await a.checkPassword!(ctx(AWS_ID), 'short'), { ok: false, reason: 'malformed secret' });
    assert.equal(await a.checkPassword!(ctx(AWS_ID), 'has a\nnewline'), { ok: false, reason: 'malformed secret' });
    const b = createIamAuthenticator({ endpoint: s.url, region: 'us-east-1', forcePathStyle: true, mode: 's3', log, timeoutMs: 60_000 });
    assert.equal(await b.checkPassword!(ctx('ab'), AWS_SECRET), { ok: false, reason: 'malformed access key' });
    assert.is(s.connections(), 0);
    assertAbsent(lines, [AWS_SECRET, 'has a\nnewline']);
  } finally {
    await s.close();
  }
});

Offline('a closed port throws IamServiceError, in both modes', async () => {
  const url = await closedPort();
  const { lines, log } = capture();
  for (const mode of ['sts', 's3'] as const) {
    const a = createIamAuthenticator({ endpoint: url, region: 'us-east-1', forcePathStyle: true, mode, log });
    const err = await rejects(a.checkPassword!(ctx(AWS_ID), AWS_SECRET));
    assert.instance(err, IamServiceError);
    assert.is((err as IamServiceError).code, 'ERR_IAM_UNAVAILABLE');
    assert.match(err.message, 'ECONNREFUSED');
    assert.not.match(err.message, AWS_SECRET);
  }
  assertAbsent(lines, [AWS_SECRET]);
});

Offline('a service that never answers throws after timeoutMs', async () => {
  const s = await silentServer();
  try {
    const a = createIamAuthenticator({ stsEndpoint: s.url, region: 'us-east-1', forcePathStyle: true, mode: 'auto', log: capture().log, timeoutMs: 300 });
    const err = await rejects(a.checkPassword!(ctx(AWS_ID), AWS_SECRET));
    assert.instance(err, IamServiceError);
    assert.match(err.message, 'no answer within 300 ms');
    assert.ok(s.connections() >= 1);
  } finally {
    await s.close();
  }
});

Offline('the endpoint in messages carries no userinfo', async () => {
  const url = (await closedPort()).replace('http://', 'http://operator:hunter2hunter2@');
  const { lines, log } = capture();
  const a = createIamAuthenticator({ endpoint: url, region: 'us-east-1', forcePathStyle: true, mode: 's3', log });
  const err = await rejects(a.checkPassword!(ctx(AWS_ID), AWS_SECRET));
  assert.instance(err, IamServiceError);
  assertAbsent([...lines, err.message], ['hunter2hunter2', AWS_SECRET]);
});

Offline.run();

// ---------------------------------------------------------------------------------------------

const Sts = suite('iam STS path (moto, IAM enforced)');

let moto: MotoEnv;

Sts.before(async () => {
  moto = await startMoto();
});

Sts.after(async () => {
  await stopMoto();
});

function stsAuth(log: IamAuthenticatorOptions['log'], extra: Partial<IamAuthenticatorOptions> = {}) {
  return createIamAuthenticator({ stsEndpoint: moto.endpoint, region: moto.region, forcePathStyle: true, mode: 'auto', log, ...extra });
}

Sts('the right keys log in, with the ARN from GetCallerIdentity', async () => {
  const { lines, log } = capture();
  const a = stsAuth(log, { cacheTtlMs: 0 });
  const r = await a.checkPassword!(ctx(moto.user.accessKeyId), moto.user.secretAccessKey);
  assert.ok(r.ok, JSON.stringify(r));
  if (!r.ok) return;
  assert.instance(r.principal, IamPrincipal);
  assert.is(r.principal.accessKeyId, moto.user.accessKeyId);
  assert.is(r.principal.secretAccessKey, moto.user.secretAccessKey);
  assert.is(r.principal.arn, moto.user.arn);
  assert.is(r.principal.account, moto.account);
  assert.type(r.principal.userId, 'string');
  assert.ok(lines.some((l) => l.includes('"outcome":"accepted"')));
  assertAbsent([...lines, JSON.stringify(r), inspect(r, { showHidden: true, depth: Infinity })], [moto.user.secretAccessKey]);
});

Sts('a wrong secret is rejected with SignatureDoesNotMatch', async () => {
  const { lines, log } = capture();
  const wrong = moto.user.secretAccessKey.slice(0, -4) + 'XXXX';
  const r = await stsAuth(log).checkPassword!(ctx(moto.user.accessKeyId), wrong);
  assert.equal(r, { ok: false, reason: 'SignatureDoesNotMatch' });
  assertAbsent(lines, [wrong, moto.user.secretAccessKey]);
});

Sts('an unknown key is rejected with InvalidClientTokenId', async () => {
  const { lines, log } = capture();
  const r = await stsAuth(log).checkPassword!(ctx('AKIAUNKNOWNUNKNOWN00'), moto.user.secretAccessKey);
  assert.equal(r, { ok: false, reason: 'InvalidClientTokenId' });
  assertAbsent(lines, [moto.user.secretAccessKey]);
});

Sts('forced sts mode uses the S3 endpoint when no STS endpoint is set', async () => {
  const a = createIamAuthenticator({ endpoint: moto.endpoint, region: moto.region, forcePathStyle: true, mode: 'sts', log: capture().log });
  const r = await a.checkPassword!(ctx(moto.user.accessKeyId), moto.user.secretAccessKey);
  assert.ok(r.ok && r.principal.arn === moto.user.arn);
});

Sts('a cached success does not let a wrong secret in, and is not needed for the right one', async () => {
  const { lines, log } = capture();
  const a = stsAuth(log, { cacheTtlMs: 60_000 });
  const right = await a.checkPassword!(ctx(moto.user.accessKeyId), moto.user.secretAccessKey);
  assert.ok(right.ok);
  const wrong = await a.checkPassword!(ctx(moto.user.accessKeyId), moto.user.secretAccessKey + 'x');
  assert.equal(wrong, { ok: false, reason: 'SignatureDoesNotMatch' });
  const again = await a.checkPassword!(ctx(moto.user.accessKeyId), moto.user.secretAccessKey);
  assert.ok(again.ok && again.principal.arn === moto.user.arn);
  // Three checks, two service calls: the third was answered from the cache.
  assert.is(lines.filter((l) => l.includes('"msg":"iam check"')).length, 2);
  assert.is(lines.filter((l) => l.includes('"msg":"iam check cached"')).length, 1);
  assertAbsent(lines, [moto.user.secretAccessKey]);
});

Sts('failures are never cached: the same wrong secret costs a service call each time', async () => {
  const { lines, log } = capture();
  const a = stsAuth(log, { cacheTtlMs: 60_000 });
  for (let i = 0; i < 3; i++) {
    assert.equal(await a.checkPassword!(ctx(moto.user.accessKeyId), 'wrong-secret-123'), { ok: false, reason: 'SignatureDoesNotMatch' });
  }
  assert.is(lines.filter((l) => l.includes('"outcome":"SignatureDoesNotMatch"')).length, 3);
});

Sts.run();

// ---------------------------------------------------------------------------------------------

const S3 = suite('iam S3 path (MinIO)');

let s3: S3TestEnv;
const USERS = ['admin', 'least', 'oneBucket', 'noRights'] as const;
const allSecrets = () => USERS.map((u) => s3[u].secretAccessKey);

S3.before(async () => {
  // The local MinIO of scripts/local-s3.sh (or S3GW_S3_EXTERNAL=1 and S3GW_TEST_*); requireS3
  // names the command to run when it is not up.
  s3 = await requireS3();
});

function s3Auth(log: IamAuthenticatorOptions['log'], extra: Partial<IamAuthenticatorOptions> = {}) {
  return createIamAuthenticator({ endpoint: s3.endpoint, region: s3.region, forcePathStyle: true, mode: 'auto', log, cacheTtlMs: 0, ...extra });
}

S3('auto mode with a custom endpoint checks through S3', async () => {
  const { lines, log } = capture();
  s3Auth(log);
  assert.ok(lines.some((l) => l.includes('"mode":"s3"') && l.includes('S3 ListBuckets')));
});

for (const who of USERS) {
  // noRights proves the point of the S3 path: every request of it is AccessDenied, which MinIO
  // answers only after checking the signature, so its keys are valid.
  S3(`valid keys log in: ${who} user`, async () => {
    const { lines, log } = capture();
    const u = s3[who];
    const r = await s3Auth(log).checkPassword!(ctx(u.accessKeyId), u.secretAccessKey);
    assert.ok(r.ok, JSON.stringify(r));
    if (!r.ok) return;
    assert.is(r.principal.accessKeyId, u.accessKeyId);
    assert.is(r.principal.secretAccessKey, u.secretAccessKey);
    assert.is(r.principal.arn, undefined);
    assertAbsent([...lines, JSON.stringify(r), inspect(r, { showHidden: true, depth: Infinity })], allSecrets());
  });
}

S3('a wrong secret is rejected with SignatureDoesNotMatch', async () => {
  const { lines, log } = capture();
  const u = s3.least;
  const wrong = u.secretAccessKey.slice(0, -4) + 'ZZZZ';
  const r = await s3Auth(log).checkPassword!(ctx(u.accessKeyId), wrong);
  assert.equal(r, { ok: false, reason: 'SignatureDoesNotMatch' });
  assertAbsent(lines, [wrong, ...allSecrets()]);
});

S3("another user's secret is rejected", async () => {
  const r = await s3Auth(capture().log).checkPassword!(ctx(s3.least.accessKeyId), s3.admin.secretAccessKey);
  assert.equal(r, { ok: false, reason: 'SignatureDoesNotMatch' });
});

S3('an unknown key is rejected with InvalidAccessKeyId', async () => {
  const { lines, log } = capture();
  const r = await s3Auth(log).checkPassword!(ctx('AKIAUNKNOWNUNKNOWN00'), s3.admin.secretAccessKey);
  assert.equal(r, { ok: false, reason: 'InvalidAccessKeyId' });
  assertAbsent(lines, allSecrets());
});

S3('the endpoint down throws IamServiceError', async () => {
  const { lines, log } = capture();
  const a = s3Auth(log, { endpoint: await closedPort() });
  const err = await rejects(a.checkPassword!(ctx(s3.admin.accessKeyId), s3.admin.secretAccessKey));
  assert.instance(err, IamServiceError);
  assertAbsent([...lines, err.message, String(err.stack)], allSecrets());
});

S3('forcing sts on MinIO (no GetCallerIdentity) throws rather than accepting', async () => {
  const u = s3.admin;
  const a = s3Auth(capture().log, { mode: 'sts' });
  const err = await rejects(a.checkPassword!(ctx(u.accessKeyId), u.secretAccessKey));
  assert.instance(err, IamServiceError);
  assert.not.match(err.message, u.secretAccessKey);
});

S3.run();
