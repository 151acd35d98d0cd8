// The SSH core on its own, for trying it with real clients before the S3 gateway exists:
// password login (user `tester`) and the test subsystems test-echo, test-sink, test-source
// and test-discard. Host keys come from --host-key FILE (repeatable) or are generated once
// into --state-dir. Example:
//   npm run dev:ssh -- --listen 127.0.0.1:2222
//   echo hello | ssh -p 2222 tester@127.0.0.1 -s test-sink
import { parseArgs } from 'node:util';
import { createSshServer } from '../src/server.js';
import { loadOrCreateHostKeys } from '../src/transport/host-keys.js';
import { createLogger } from '../src/log.js';
import { passwordAuth, TEST_PASSWORD, TEST_USER } from '../spec/helpers/test-server.js';
import * as subsystems from '../spec/helpers/subsystems.js';

const { values } = parseArgs({
  options: {
    listen: { type: 'string', default: '127.0.0.1:2222' },
    'host-key': { type: 'string', multiple: true, default: [] },
    'state-dir': { type: 'string', default: '.state' },
    'log-level': { type: 'string', default: 'info' },
  },
});
const log = createLogger(values['log-level'] as 'info');
const hostKeys = loadOrCreateHostKeys(values['host-key']!, values['state-dir']!, (m) => log.info(m));
const [host, port] = [values.listen!.replace(/:\d+$/, ''), Number(values.listen!.split(':').pop())];
const server = createSshServer({
  hostKeys,
  authenticator: passwordAuth,
  log,
  sessions: () => ({
    subsystem: (name) =>
      ({
        'test-echo': subsystems.echo,
        'test-sink': subsystems.sink,
        'test-discard': subsystems.discard,
        'test-source': subsystems.source(64 * 1024 * 1024, 7),
      })[name],
  }),
});
server.listen(port, host, () => {
  log.info(`listening on ${host}:${port}; user ${TEST_USER}, password '${TEST_PASSWORD}'`);
});
