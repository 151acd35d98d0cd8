#!/usr/bin/env python3
"""Times SFTP metadata operations on one paramiko session, for bench/rename.ts.

Input: one JSON object in argv[1]: port, user, ops (a list of {"op": NAME, ...}, see OPS); the
password (the S3 secret) comes from the environment variable S3GW_BENCH_SECRET, not argv.
Output: one JSON line: {"ok": true, "loginSec": S, "results": [{"op", "ok", "sec", "value" or
"error"}]} or {"ok": false, "error": TEXT}. An op that fails is reported, not fatal, unless it
has "mustSucceed": true. Requests have no client-side timeout: a rename of many GiB is a copy on
the server and may take minutes.
"""
import json
import os
import socket
import sys
import time

import paramiko


def attrs(a):
    return {"size": a.st_size, "mtime": a.st_mtime}


OPS = {
    "stat": lambda sftp, op: attrs(sftp.stat(op["path"])),
    "rename": lambda sftp, op: sftp.rename(op["from"], op["to"]),
    "posix_rename": lambda sftp, op: sftp.posix_rename(op["from"], op["to"]),
    "utime": lambda sftp, op: sftp.utime(op["path"], (op["mtime"], op["mtime"])),
    "remove": lambda sftp, op: sftp.remove(op["path"]),
}


def main():
    spec = json.loads(sys.argv[1])
    secret = os.environ["S3GW_BENCH_SECRET"]
    t0 = time.perf_counter()
    sock = socket.create_connection(("127.0.0.1", spec["port"]), timeout=30)
    t = paramiko.Transport(sock)
    t.start_client(timeout=30)
    t.auth_password(spec["user"], secret)
    sftp = paramiko.SFTPClient.from_transport(t)
    sock.settimeout(None)
    login = time.perf_counter() - t0
    results = []
    try:
        for op in spec["ops"]:
            s = time.perf_counter()
            try:
                value = OPS[op["op"]](sftp, op)
                results.append({"op": op["op"], "ok": True, "sec": time.perf_counter() - s, "value": value})
            except (IOError, OSError) as e:
                if op.get("mustSucceed"):
                    raise
                results.append({"op": op["op"], "ok": False, "sec": time.perf_counter() - s, "error": str(e)})
    finally:
        sftp.close()
        t.close()
    print(json.dumps({"ok": True, "loginSec": login, "results": results}), flush=True)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # reported to the caller, which fails the run
        print(json.dumps({"ok": False, "error": repr(e)}), flush=True)
        sys.exit(1)
