"""Holds idle SFTP sessions open against a server, for bench/gateway-memory.ts (paramiko).

Argument: one JSON object {port, user, password}.
Commands on stdin, one a line:
  open N   opens N more connections, one after the other; each logs in with the password, opens
           the sftp subsystem (INIT/VERSION) and asks REALPATH "." so that the session has done
           real work; then it idles. Answers "ready TOTAL" (or "error MESSAGE").
  close    closes every connection and answers "closed"; so does end of input.
One process holds all the connections (one paramiko transport thread each), so 100 idle sessions
cost the client one Python process rather than 100 ssh and sftp processes.
"""
import json
import socket
import sys

import paramiko

TIMEOUT = 30

spec = json.loads(sys.argv[1])
held = []


def open_one():
    sock = socket.create_connection(("127.0.0.1", spec["port"]), timeout=TIMEOUT)
    t = paramiko.Transport(sock)
    t.start_client(timeout=TIMEOUT)
    t.auth_password(spec["user"], spec["password"])
    if not t.is_authenticated():
        raise RuntimeError("not authenticated")
    sftp = paramiko.SFTPClient.from_transport(t)
    sftp.normalize(".")
    held.append((t, sftp))


def close_all():
    while held:
        t, sftp = held.pop()
        try:
            sftp.close()
        finally:
            t.close()


def answer(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


for line in sys.stdin:
    cmd = line.split()
    if not cmd:
        continue
    try:
        if cmd[0] == "open":
            for _ in range(int(cmd[1])):
                open_one()
            answer("ready %d" % len(held))
        elif cmd[0] == "close":
            close_all()
            answer("closed")
        else:
            answer("error unknown command %r" % cmd[0])
    except Exception as e:  # reported to the benchmark, which fails the run
        answer("error %s: %s" % (type(e).__name__, str(e).replace("\n", " ")))
close_all()
answer("closed")
