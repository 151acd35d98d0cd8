// Development aid: runs the SSH core with the test subsystems on a port, for manual tries
// with `ssh -p PORT tester@127.0.0.1 -s test-echo`.
import { startTestServer, TEST_PASSWORD, TEST_USER } from '../spec/helpers/test-server.js';

const s = await startTestServer();
console.log(`listening on 127.0.0.1:${s.port} user ${TEST_USER} password '${TEST_PASSWORD}'`);
