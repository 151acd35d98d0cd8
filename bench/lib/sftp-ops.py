#!/usr/bin/env python3
"""Times SFTP metadata operations on one paramiko session, for bench/rename.ts.

Input: one JSON object in argv[1]: port, user, ops (a list of {"op": NAME, ...}, see OPS); the
password (the S3 secret) comes from the environment variable S3GW_BENCH_SECRET, not argv.
Output: one JSON line: {"ok": true, "loginSec": S, "results": [{"op", "ok", "sec", "value" or
"error"}]} or {"ok": false, "error": TEXT}. An op that fails is reported, not fatal, unless it
has "mustSucceed": true. Requests have no client-side timeout: a rename of many GiB is a copy on
the server and may take minutes.
"""
import hashlib
import json
import os
import socket
import sys
import time

import paramiko


def attrs(a):
    return {"size": a.st_size, "mtime": a.st_mtime}


class Generated:
    """A file-like source of `size` bytes made as they are read: a random MiB repeated, each
    copy stamped with its index so no two MiB are alike; keeps the sha256 of what was read."""

    def __init__(self, size):
        self.left = size
        self.block = bytearray(os.urandom(1 << 20))
        self.index = 0
        self.at = 1 << 20
        self.sha = hashlib.sha256()

    def read(self, n=-1):
        if self.left <= 0:
            return b""
        if self.at == len(self.block):
            self.block[0:8] = self.index.to_bytes(8, "big")
            self.index += 1
            self.at = 0
        n = min(n if n > 0 else 1 << 20, len(self.block) - self.at, self.left)
        out = bytes(self.block[self.at:self.at + n])
        self.at += n
        self.left -= n
        self.sha.update(out)
        return out


def op_upload(sftp, op):
    """putfo from a generator: OPEN WRITE|CREAT|TRUNC, pipelined WRITEs, CLOSE, then a STAT."""
    src = Generated(op["size"])
    sftp.putfo(src, op["path"], file_size=op["size"], confirm=True)
    return {"sha256": src.sha.hexdigest()}


OPS = {
    "upload": op_upload,
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
    if spec.get("clientVersion"):
        t.local_version = spec["clientVersion"]  # e.g. to be taken for WinSCP
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
