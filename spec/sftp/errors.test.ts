import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { BackendError, type BackendErrorCode } from '../../src/backend.js';
import { FX } from '../../src/sftp/constants.js';
import { clientText, SftpStatusError, toFxStatus } from '../../src/sftp/errors.js';
import { MalformedError } from '../../src/wire/errors.js';
import { createLogger } from '../../src/log.js';

const Errors = suite('sftp/errors: toFxStatus');

const table: [BackendErrorCode, number][] = [
  ['ENOENT', FX.NO_SUCH_FILE],
  ['EACCES', FX.PERMISSION_DENIED],
  ['ENOTSUP', FX.OP_UNSUPPORTED],
  ['EINVAL', FX.FAILURE],
  ['EEXIST', FX.FAILURE],
  ['ENOTEMPTY', FX.FAILURE],
  ['ENOTDIR', FX.FAILURE],
  ['EISDIR', FX.FAILURE],
  ['EIO', FX.FAILURE],
];

for (const [code, status] of table) {
  Errors(`BackendError ${code} is status ${status} with the backend's message`, () => {
    assert.equal(toFxStatus(new BackendError(code, `it failed: ${code}`)), { status, message: `it failed: ${code}` });
  });
}

Errors('SftpStatusError keeps its status and message', () => {
  assert.equal(toFxStatus(new SftpStatusError(FX.OP_UNSUPPORTED, 'nope')), { status: FX.OP_UNSUPPORTED, message: 'nope' });
});

Errors('MalformedError is BAD_MESSAGE', () => {
  assert.equal(toFxStatus(new MalformedError('truncated uint32')), { status: FX.BAD_MESSAGE, message: 'truncated uint32' });
});

Errors('anything else is FAILURE "internal error" on the wire and the full error in the log', () => {
  const lines: string[] = [];
  const log = createLogger('debug', (l) => lines.push(l));
  const r = toFxStatus(new TypeError('secret detail at /srv/app.js:12'), log);
  assert.equal(r, { status: FX.FAILURE, message: 'internal error' });
  assert.is(lines.length, 1);
  const rec = JSON.parse(lines[0]!);
  assert.is(rec.level, 'error');
  assert.match(rec.error, /TypeError: secret detail/);
  assert.equal(toFxStatus('a string', log), { status: FX.FAILURE, message: 'internal error' });
  assert.equal(toFxStatus(new BackendError('EWHAT' as BackendErrorCode, 'x'), log).message, 'internal error');
});

Errors('messages lose control characters and are capped', () => {
  assert.is(toFxStatus(new BackendError('ENOENT', 'no such file: /b/\x1b[31mred\x07\u009b')).message, 'no such file: /b/?[31mred??');
  assert.is(clientText('é € 🔑'), 'é € 🔑');
  const long = clientText('x'.repeat(5000));
  assert.is(long.length, 2048);
  assert.ok(long.endsWith('…'));
});

Errors.run();
