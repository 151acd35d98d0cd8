import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { MAX_COMMAND, parseScpCommand, type ScpCommand } from '../../src/scp/command.js';

const Command = suite('scp/command: the exec command line, parsed without a shell');

function ok(command: string): ScpCommand {
  const r = parseScpCommand(command);
  if ('error' in r) throw new Error(`${JSON.stringify(command)}: ${r.error}`);
  return r;
}

function refused(command: string, match?: RegExp): void {
  const r = parseScpCommand(command);
  assert.ok('error' in r, `${JSON.stringify(command)} should be refused`);
  if (match !== undefined && 'error' in r) assert.match(r.error, match);
}

Command('what OpenSSH scp -O sends for an upload', () => {
  assert.equal(ok('scp -t /bucket/dir'), {
    mode: 'sink', recursive: false, preserve: false, targetIsDir: false, verbose: false, paths: ['/bucket/dir'],
  });
  assert.equal(ok('scp -v -r -p -d -t /b/x'), {
    mode: 'sink', recursive: true, preserve: true, targetIsDir: true, verbose: true, paths: ['/b/x'],
  });
});

Command('what OpenSSH scp -O sends for a download, several sources', () => {
  const c = ok('scp -r -p -f /b/a /b/c');
  assert.is(c.mode, 'source');
  assert.ok(c.recursive && c.preserve && !c.targetIsDir);
  assert.equal(c.paths, ['/b/a', '/b/c']);
});

Command('combined flags and -- before a path that starts with -', () => {
  const c = ok('scp -rpt -- -name');
  assert.is(c.mode, 'sink');
  assert.ok(c.recursive && c.preserve);
  assert.equal(c.paths, ['/-name']);
  assert.equal(ok('scp -f -- -a -b').paths, ['/-a', '/-b']);
});

Command('paths are relative to / and normalised: .. cannot leave the namespace', () => {
  assert.equal(ok('scp -t bucket/key').paths, ['/bucket/key']);
  assert.equal(ok('scp -t /../../etc/passwd').paths, ['/etc/passwd']);
  assert.equal(ok('scp -t /b/x/../../../y/./z/').paths, ['/y/z']);
  assert.equal(ok('scp -t .').paths, ['/']);
  assert.equal(ok("scp -t ''").paths, ['/']);
  assert.equal(ok('scp -f ~/b/k').paths, ['/b/k']);
  assert.equal(ok('scp -t ~').paths, ['/']);
});

Command('single quotes, double quotes and backslashes as a POSIX shell removes them', () => {
  assert.equal(ok("scp -t -- '/bucket/my file'").paths, ['/bucket/my file']);
  assert.equal(ok('scp -t "/b/a \\"q\\" \\\\ \\x"').paths, ['/b/a "q" \\ \\x']);
  assert.equal(ok('scp -t /b/my\\ file').paths, ['/b/my file']);
  assert.equal(ok("scp -t '/b/it'\\''s'").paths, ["/b/it's"]);
  assert.equal(ok("scp -t '$HOME;`x`|y'").paths, ['/$HOME;`x`|y']);
  assert.equal(ok('scp   -t\t/b/x  ').paths, ['/b/x']);
  assert.equal(ok("scp -t '~'").paths, ['/~']);
});

Command('source paths are glob patterns: quoted or escaped metacharacters arrive escaped', () => {
  assert.equal(ok('scp -f /b/*.txt').paths, ['/b/*.txt']);
  assert.equal(ok("scp -f '/b/*.txt'").paths, ['/b/\\*.txt']);
  assert.equal(ok('scp -f /b/\\*[ab]?').paths, ['/b/\\*[ab]?']);
  assert.equal(ok("scp -f '/b/a\\b'").paths, ['/b/a\\\\b']);
  // A sink's target is literal.
  assert.equal(ok("scp -t '/b/*'").paths, ['/b/*']);
});

Command('anything but scp -t / scp -f is refused with a one-line reason', () => {
  refused('', /empty/);
  refused('ls -l', /not supported/);
  refused('/usr/bin/scp -t /x', /not supported/);
  refused('scp', /-t or -f/);
  refused('scp /x', /-t or -f/);
  refused('scp -t', /no path/);
  refused('scp -t --', /no path/);
  refused('scp -t -f /x', /together/);
  refused('scp -tf /x', /together/);
  refused('scp -3 -t /x', /-3/);
  refused('scp -S evil -t /x', /-S/);
  refused('scp -o ProxyCommand=x -t /x', /-o/);
  refused('scp -t /a /b', /ambiguous/);
});

Command('shell syntax we cannot honour is refused, never passed on', () => {
  refused('scp -t /x; rm -rf /', /;/);
  refused('scp -t `touch /tmp/x`', /`/);
  refused('scp -t $(id)', /\$/);
  refused('scp -t "$HOME"', /\$/);
  refused('scp -t "`id`"', /`/);
  refused('scp -t /x | cat', /\|/);
  refused('scp -t /x && id', /&/);
  refused('scp -t /x > /y', />/);
  refused('scp -t /x #c', /#/);
  refused('scp -t ~root/x', /~user/);
  refused("scp -t '/x", /single quote/);
  refused('scp -t "/x', /double quote/);
  refused('scp -t /x\\', /backslash/);
});

Command('hostile sizes: NUL bytes, over-long commands and paths, too many paths', () => {
  refused('scp -t /a\0b', /NUL/);
  refused('scp -t /' + 'a'.repeat(MAX_COMMAND), /longer/);
  refused('scp -t /' + 'a'.repeat(5000), /path longer/);
  refused('scp -f' + ' /a'.repeat(300), /more than/);
});

Command.run();
