/**
 * Error mapping with real denials: a user with no rights, a user confined to one bucket, wrong
 * and unknown keys, temporary credentials, and an abort the store refuses.
 * Every message is readable and none carries a secret.
 */
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { S_IFDIR, S_IFMT } from '../../src/backend.js';
import { createLogger } from '../../src/log.js';
import {
  BUCKET,
  OTHER_BUCKET,
  backend,
  closeBackends,
  listAll,
  pendingUploads,
  putAsAdmin,
  rejectsWith,
  removePrefix,
  runPrefix,
  s3env,
  writePattern,
} from './fixture.js';

const PREFIX = runPrefix('rights');
const DIR = `/${BUCKET}/${PREFIX}`;

const test = suite('s3 backend: rights and error mapping');

test.before(async () => {
  await s3env();
  await putAsAdmin(BUCKET, `${PREFIX}/file`, 'data');
  await putAsAdmin(OTHER_BUCKET, `${PREFIX}/file`, 'data');
});

test.after(async () => {
  await closeBackends();
  await removePrefix(BUCKET, PREFIX + '/');
  await removePrefix(OTHER_BUCKET, PREFIX + '/');
});

test('a user with no rights gets EACCES everywhere, with readable messages', async () => {
  const env = await s3env();
  const b = await backend('noRights');
  const messages = [
    await rejectsWith(b.stat(`${DIR}/file`), 'EACCES'),
    await rejectsWith(b.openRead(`${DIR}/file`), 'EACCES'),
    await rejectsWith(listAll(b, DIR), 'EACCES'),
    await rejectsWith(listAll(b, `/${BUCKET}`), 'EACCES'),
    await rejectsWith(b.mkdir(`${DIR}/d`), 'EACCES'),
    await rejectsWith(b.remove(`${DIR}/file`), 'EACCES'),
    await rejectsWith(b.rename(`${DIR}/file`, `${DIR}/file2`, false), 'EACCES'),
    await rejectsWith(b.setstat(`${DIR}/file`, { mtime: 1 }), 'EACCES'),
  ];
  const h = await b.openWrite(`${DIR}/new`, { exclusive: false });
  await h.write(0, Buffer.from('x'));
  messages.push(await rejectsWith(h.commit(), 'EACCES'));
  for (const m of messages) {
    assert.match(m, /access denied/);
    assert.not.ok(m.includes(env.noRights.secretAccessKey), 'no secret in messages');
  }
  assert.match(messages[0]!, new RegExp(`stat ${DIR}/file`));
  // Still: the root lists (empty) and buckets are directories one can cd into.
  assert.equal(await listAll(b, '/'), []);
  assert.is((await b.stat(`/${BUCKET}`)).mode & S_IFMT, S_IFDIR);
});

test('the one-bucket user works in its bucket and is denied in the other', async () => {
  const b = await backend('oneBucket');
  assert.is((await b.stat(`${DIR}/file`)).size, 4);
  const h = await b.openWrite(`${DIR}/one`, { exclusive: false });
  await h.write(0, Buffer.from('one'));
  await h.commit();
  await rejectsWith(b.stat(`/${OTHER_BUCKET}/${PREFIX}/file`), 'EACCES');
  await rejectsWith(b.openRead(`/${OTHER_BUCKET}/${PREFIX}/file`), 'EACCES');
  const w = await b.openWrite(`/${OTHER_BUCKET}/${PREFIX}/one`, { exclusive: false });
  await w.write(0, Buffer.from('x'));
  await rejectsWith(w.commit(), 'EACCES');
  await rejectsWith(b.rename(`${DIR}/one`, `/${OTHER_BUCKET}/${PREFIX}/one`, false), 'EACCES');
  assert.is((await b.stat(`${DIR}/one`)).size, 3, 'a failed rename leaves the source');
});

test('a wrong secret and an unknown access key are EACCES and say which', async () => {
  const env = await s3env();
  const wrongSecret = 'wrong-secret-' + 'x'.repeat(27);
  const wrong = await backend({ accessKeyId: env.least.accessKeyId, secretAccessKey: wrongSecret });
  const m1 = await rejectsWith(wrong.stat(`${DIR}/file`), 'EACCES');
  const m2 = await rejectsWith(listAll(wrong, DIR), 'EACCES');
  assert.match(m2, /signature/);
  for (const m of [m1, m2]) assert.not.ok(m.includes(wrongSecret));
  const unknown = await backend({ accessKeyId: 'AKIANOSUCHKEY0000000', secretAccessKey: wrongSecret });
  const m3 = await rejectsWith(listAll(unknown, DIR), 'EACCES');
  assert.match(m3, /not known/);
});

test('temporary (STS) credentials work; without s3:AbortMultipartUpload an abort resolves and is logged', async () => {
  const env = await s3env();
  // MinIO's AssumeRole: temporary keys with the least user's rights cut down by a session policy
  // that leaves out s3:AbortMultipartUpload.
  const sts = new STSClient({ region: env.region, endpoint: env.endpoint, credentials: env.least });
  const policy = {
    Version: '2012-10-17',
    Statement: [
      {
        Effect: 'Allow',
        Action: ['s3:GetObject', 's3:PutObject', 's3:ListBucket', 's3:GetBucketLocation'],
        Resource: ['arn:aws:s3:::*'],
      },
    ],
  };
  const out = await sts.send(
    new AssumeRoleCommand({
      RoleArn: 'arn:aws:iam::000000000000:role/s3gw-spec',
      RoleSessionName: 's3gw-spec',
      Policy: JSON.stringify(policy),
      DurationSeconds: 900,
    }),
  );
  sts.destroy();
  const temp = {
    accessKeyId: out.Credentials!.AccessKeyId!,
    secretAccessKey: out.Credentials!.SecretAccessKey!,
    sessionToken: out.Credentials!.SessionToken!,
  };
  const lines: string[] = [];
  const log = createLogger('warn', (l) => lines.push(l));
  const b = await backend(temp, { log });
  assert.is((await b.stat(`${DIR}/file`)).size, 4);
  const h = await b.openWrite(`${DIR}/cannot-abort`, { exclusive: false });
  await writePattern(h, 5 * 1024 * 1024 + 1);
  await h.abort();
  assert.ok(lines.some((l) => l.includes('could not abort multipart upload')), lines.join('\n'));
  for (const secret of [temp.secretAccessKey, temp.sessionToken]) {
    assert.not.ok(lines.some((l) => l.includes(secret)), 'no secret in the log');
  }
  assert.is((await pendingUploads(BUCKET, `${PREFIX}/cannot-abort`)).length, 1, 'the upload stays pending');
  await rejectsWith(b.stat(`${DIR}/cannot-abort`), 'ENOENT');
  await removePrefix(BUCKET, `${PREFIX}/cannot-abort`);
});

test.run();
