"""Runs one OpenSSH client for bench/ssh-throughput.ts and reports on it as JSON.

Python rather than Node because the shell's plumbing is what is wanted, with real pipes (Node
gives children socketpairs) and exact accounting:
- upload:   head -c N /dev/zero | ssh ...         (a pipe, as in a shell)
- download: ssh ... | (splice into /dev/null, counting the bytes)
  splice(2) moves the pages to /dev/null without copying them to user space, so counting
  costs the client side little more than writing straight to /dev/null would.
- ssh's own CPU time comes from wait4(2)'s rusage, exact even though ssh has exited.

Argument: one JSON object {argv, upload (bytes or null), download (bool)}.
Output: one JSON line {exit, wall, ssh_user, ssh_sys, downloaded, all_cpu, stderr}.
"""
import fcntl
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

spec = json.loads(sys.argv[1])
upload = spec.get("upload")
download = bool(spec.get("download"))
devnull = os.open("/dev/null", os.O_RDWR)
err = tempfile.TemporaryFile()

t0 = time.monotonic()
head = None
stdin = devnull
if upload is not None:
    r, w = os.pipe()
    head = subprocess.Popen(["head", "-c", str(upload), "/dev/zero"], stdout=w, stdin=devnull)
    os.close(w)
    stdin = r
stdout = devnull
if download:
    dr, dw = os.pipe()
    try:
        fcntl.fcntl(dr, fcntl.F_SETPIPE_SZ, 1 << 20)
    except OSError:
        pass
    stdout = dw
ssh = subprocess.Popen(spec["argv"], stdin=stdin, stdout=stdout, stderr=err)
if stdin != devnull:
    os.close(stdin)
downloaded = None
if download:
    os.close(dw)
    downloaded = 0
    while True:
        k = os.splice(dr, devnull, 1 << 20)
        if k == 0:
            break
        downloaded += k
    os.close(dr)
_, status, ru = os.wait4(ssh.pid, 0)
ssh.returncode = os.waitstatus_to_exitcode(status)
wall = time.monotonic() - t0
if head is not None:
    head.wait()
err.seek(0)
me = resource.getrusage(resource.RUSAGE_SELF)
kids = resource.getrusage(resource.RUSAGE_CHILDREN)
print(
    json.dumps(
        {
            "exit": ssh.returncode,
            "wall": wall,
            "ssh_user": ru.ru_utime,
            "ssh_sys": ru.ru_stime,
            "downloaded": downloaded,
            # Everything on the client side (this driver, head, ssh): to tell foreign load apart.
            "all_cpu": me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime,
            "stderr": err.read(65536).decode("utf-8", "replace"),
        }
    )
)
