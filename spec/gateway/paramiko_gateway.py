#!/usr/bin/env python3
"""Drives paramiko's SFTP client against the s3gw gateway for spec/gateway/*.test.ts.

Input: one JSON object in argv[1]:
  port, user, secret        where and who (user = access key ID, secret = secret access key)
  scenario                  "ops" (the only one): run `ops` in order on one SFTP session
  ops                       a list of {"op": NAME, ...}; see OPS below ("winscpCut" ends the
                            session's connection, so it must be the last op)
Output: one JSON line on stdout, {"ok": true, "result": {"client": ..., "results": [...]}} or
{"ok": false, "error": ..., "trace": ...}. Each op's result is {"ok": true, "value": ...} or, when
the server answered with an error, {"ok": false, "errno": N or null, "message": TEXT, "type": NAME}:
the server's status message exactly as paramiko reports it, so the caller can check it. An op
with "expectError": false that fails ends the run instead (a broken session is not an answer).

S3GW_PARAMIKO_LOG=<file> writes paramiko's debug log there.
"""
import hashlib
import json
import logging
import os
import socket
import sys
import traceback

import paramiko

TIMEOUT = 30
CHUNK = 32 * 1024


def connect(spec):
    sock = socket.create_connection(("127.0.0.1", spec["port"]), timeout=TIMEOUT)
    t = paramiko.Transport(sock)
    if spec.get("clientVersion"):
        # The identification string sent to the server, e.g. to be taken for WinSCP.
        t.local_version = spec["clientVersion"]
    t.start_client(timeout=TIMEOUT)
    t.auth_password(spec["user"], spec["secret"])
    if not t.is_authenticated():
        raise RuntimeError("not authenticated")
    return t


def sha256_file(path):
    h = hashlib.sha256()
    n = 0
    with open(path, "rb") as f:
        while True:
            d = f.read(1024 * 1024)
            if not d:
                break
            h.update(d)
            n += len(d)
    return h.hexdigest(), n


def attrs(a):
    return {
        "size": a.st_size,
        "mode": a.st_mode,
        "mtime": a.st_mtime,
        "atime": a.st_atime,
    }


def op_put(sftp, op):
    # confirm=True (the default): paramiko STATs the file right after CLOSE and fails unless the
    # size matches, so the object must exist by the time CLOSE is answered.
    a = sftp.put(op["local"], op["remote"], confirm=True)
    return attrs(a)


def op_get(sftp, op):
    sftp.get(op["remote"], op["local"])
    digest, n = sha256_file(op["local"])
    return {"sha256": digest, "size": n}


def op_write_then_stat(sftp, op):
    """open/write/close by hand, then STAT at once: no delay between CLOSE's answer and STAT."""
    with open(op["local"], "rb") as src:
        f = sftp.open(op["remote"], "wb")
        f.set_pipelined(True)
        while True:
            d = src.read(CHUNK)
            if not d:
                break
            f.write(d)
        f.close()
    return attrs(sftp.stat(op["remote"]))


def op_stat(sftp, op):
    return attrs(sftp.stat(op["path"]))


def op_lstat(sftp, op):
    return attrs(sftp.lstat(op["path"]))


def op_listdir_attr(sftp, op):
    out = []
    for a in sftp.listdir_attr(op["path"]):
        out.append(dict(attrs(a), filename=a.filename, longname=a.longname))
    return sorted(out, key=lambda x: x["filename"])


def op_listdir(sftp, op):
    return sorted(sftp.listdir(op["path"]))


def op_mkdir(sftp, op):
    sftp.mkdir(op["path"])


def op_rmdir(sftp, op):
    sftp.rmdir(op["path"])


def op_remove(sftp, op):
    sftp.remove(op["path"])


def op_rename(sftp, op):
    sftp.rename(op["from"], op["to"])


def op_posix_rename(sftp, op):
    sftp.posix_rename(op["from"], op["to"])


def op_symlink(sftp, op):
    sftp.symlink(op["target"], op["path"])


def op_readlink(sftp, op):
    return sftp.readlink(op["path"])


def op_utime(sftp, op):
    sftp.utime(op["path"], (op["mtime"], op["mtime"]))


def op_chmod(sftp, op):
    sftp.chmod(op["path"], op["mode"])


def op_open_read(sftp, op):
    f = sftp.open(op["path"], "rb")
    data = f.read(op.get("length", 16))
    f.close()
    return {"bytes": len(data)}


def op_open_many(sftp, op):
    """Opens `count` handles on one file and keeps them open; reports how many opened and why
    the first refused one failed. All are closed at the end."""
    handles, error = [], None
    for _ in range(op["count"]):
        try:
            handles.append(sftp.open(op["path"], "rb"))
        except (IOError, OSError) as e:
            error = message_of(e)
            break
    for f in handles:
        f.close()
    return {"opened": len(handles), "error": error}


def op_more_channels(sftp, op):
    """Opens `count` more session channels on the SFTP session's connection; reports how many
    the server accepted and the first refusal."""
    t = sftp.get_channel().get_transport()
    opened, error = [], None
    for _ in range(op["count"]):
        try:
            opened.append(t.open_session(timeout=TIMEOUT))
        except Exception as e:  # paramiko.ChannelException: (code, text)
            error = repr(e)
            break
    for ch in opened:
        ch.close()
    return {"opened": len(opened), "error": error}


def op_read_ranges(sftp, op):
    """Random reads on one handle: seek and read each [offset, length], out of order."""
    out = []
    with sftp.open(op["path"], "rb") as f:
        for offset, length in op["ranges"]:
            f.seek(offset)
            data = f.read(length)
            out.append({"offset": offset, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()})
    return out


def winscp_finish(sftp, remote, mtime):
    """The end of WinSCP's upload once name.filepart is closed: the target removed if it exists,
    the .filepart renamed to the name with plain RENAME (draft-02, fails on an existing target),
    then SETSTAT of the mtime (WinSCP's "preserve timestamp", on by default)."""
    part = remote + ".filepart"
    existed = True
    try:
        sftp.stat(remote)
    except IOError:
        existed = False
    if existed:
        sftp.remove(remote)
    sftp.rename(part, remote)
    sftp.utime(remote, (mtime, mtime))
    st = sftp.stat(remote)
    part_gone = False
    try:
        sftp.stat(part)
    except IOError:
        part_gone = True
    return {"existed": existed, "stat": attrs(st), "partGone": part_gone}


def op_check(sftp, op):
    """SFTPFile.check: paramiko's "check-file" request on a read handle; the hash as hex."""
    with sftp.open(op["path"], "rb") as f:
        h = f.check(op["algorithm"], op.get("offset", 0), op.get("length", 0), op.get("blockSize", 0))
    return {"hex": h.hex()}


def op_winscp(sftp, op):
    """WinSCP's default upload ("transfer to temporary file name"): name.filepart opened
    WRITE|CREAT|TRUNC, written and closed, then winscp_finish."""
    remote = op["remote"]
    with open(op["local"], "rb") as src:
        f = sftp.open(remote + ".filepart", "wb")  # paramiko: WRITE | CREAT | TRUNC
        f.set_pipelined(True)
        copy(src, f, None)
        f.close()
    return winscp_finish(sftp, remote, op["mtime"])


# pflags by name (draft-02 §6.3), for OPENs paramiko's modes cannot express: WinSCP's resume
# opens WRITE|CREAT with neither TRUNC nor APPEND, and "r+" would add READ.
PFLAGS = {
    "READ": paramiko.sftp.SFTP_FLAG_READ,
    "WRITE": paramiko.sftp.SFTP_FLAG_WRITE,
    "APPEND": paramiko.sftp.SFTP_FLAG_APPEND,
    "CREAT": paramiko.sftp.SFTP_FLAG_CREATE,
    "TRUNC": paramiko.sftp.SFTP_FLAG_TRUNC,
    "EXCL": paramiko.sftp.SFTP_FLAG_EXCL,
}

# Files left open on purpose (an upload cut off before CLOSE): referenced until the process ends,
# so that nothing closes them in between.
LEFT_OPEN = []


def open_raw(sftp, path, flags):
    """OPEN with exactly `flags` (names from PFLAGS); a paramiko file for writing on the handle."""
    pflags = 0
    for name in flags:
        pflags |= PFLAGS[name]
    t, msg = sftp._request(paramiko.sftp.CMD_OPEN, sftp._adjust_cwd(path), pflags, paramiko.SFTPAttributes())
    if t != paramiko.sftp.CMD_HANDLE:
        raise paramiko.SFTPError("expected a handle")
    return paramiko.SFTPFile(sftp, msg.get_binary(), "w")


def copy(src, f, length):
    """Writes from `src` to the remote file `f` in CHUNK pieces: `length` bytes, or to the end."""
    left = length
    while left is None or left > 0:
        d = src.read(CHUNK if left is None else min(CHUNK, left))
        if not d:
            break
        f.write(d)
        if left is not None:
            left -= len(d)


def close_checked(sftp, f):
    """CLOSE that raises when the server refuses it: paramiko's own close() ignores a failed
    CLOSE, and a resumed upload that was not stored must not look like success. Pipelined WRITEs
    are not checked by paramiko either; a failed one makes our server fail the CLOSE."""
    if f.pipelined:
        sftp._finish_responses(f)
    f._closed = True
    sftp._request(paramiko.sftp.CMD_CLOSE, f.handle)


def message_of(e):
    if getattr(e, "errno", None) is not None and e.strerror is not None:
        return e.strerror
    return str(e.args[0]) if e.args else str(e)


def op_winscp_cut(sftp, op):
    """The first half of a WinSCP upload that is cut off: name.filepart opened WRITE|CREAT|TRUNC,
    the first `bytes` bytes written, then the connection closed without CLOSE (no SFTP CLOSE, no
    channel close, no SSH DISCONNECT: the TCP connection just ends). FSTAT before the cut is
    answered only after every earlier WRITE on the handle, and reports the size they made. No op
    can follow on this session."""
    f = open_raw(sftp, op["remote"] + ".filepart", ["WRITE", "CREAT", "TRUNC"])
    f.set_pipelined(True)
    with open(op["local"], "rb") as src:
        copy(src, f, op["bytes"])
    size = f.stat().st_size
    LEFT_OPEN.append(f)
    sftp.get_channel().get_transport().close()
    return {"sizeBeforeCut": size}


def op_winscp_resume(sftp, op):
    """WinSCP resuming after a cut: STAT name.filepart for its size, reopen it WRITE|CREAT (no
    TRUNC), write the rest of the local file from that size, CLOSE, then winscp_finish."""
    remote = op["remote"]
    part = remote + ".filepart"
    size = sftp.stat(part).st_size
    f = open_raw(sftp, part, ["WRITE", "CREAT"])
    f.set_pipelined(True)
    with open(op["local"], "rb") as src:
        src.seek(size)
        f.seek(size)
        copy(src, f, None)
    close_checked(sftp, f)
    return dict(winscp_finish(sftp, remote, op["mtime"]), resumedFrom=size)


def op_open_write_at(sftp, op):
    """OPEN with `flags`, FSTAT, then `length` bytes of `local` from `from` written at `offset`
    one WRITE at a time (each answered before the next), then CLOSE. A failed WRITE or CLOSE is
    reported, not raised, so both messages can be checked."""
    f = open_raw(sftp, op["path"], op["flags"])
    out = {"sizeAtOpen": f.stat().st_size, "writeError": None, "closeError": None}
    try:
        with open(op["local"], "rb") as src:
            src.seek(op.get("from", 0))
            f.seek(op["offset"])
            copy(src, f, op["length"])
    except IOError as e:
        out["writeError"] = message_of(e)
    try:
        close_checked(sftp, f)
    except IOError as e:
        out["closeError"] = message_of(e)
    return out


OPS = {
    "put": op_put,
    "get": op_get,
    "writeThenStat": op_write_then_stat,
    "stat": op_stat,
    "lstat": op_lstat,
    "listdir_attr": op_listdir_attr,
    "listdir": op_listdir,
    "mkdir": op_mkdir,
    "rmdir": op_rmdir,
    "remove": op_remove,
    "rename": op_rename,
    "posix_rename": op_posix_rename,
    "symlink": op_symlink,
    "readlink": op_readlink,
    "utime": op_utime,
    "chmod": op_chmod,
    "openRead": op_open_read,
    "readRanges": op_read_ranges,
    "openMany": op_open_many,
    "moreChannels": op_more_channels,
    "winscp": op_winscp,
    "check": op_check,
    "winscpCut": op_winscp_cut,
    "winscpResume": op_winscp_resume,
    "openWriteAt": op_open_write_at,
}


def run_op(sftp, op):
    try:
        return {"op": op["op"], "ok": True, "value": OPS[op["op"]](sftp, op)}
    except (IOError, OSError, EOFError) as e:
        if op.get("expectError") is False:
            raise
        # paramiko: IOError(errno, text) for NO_SUCH_FILE / PERMISSION_DENIED, IOError(text) else.
        errno_ = e.errno if getattr(e, "errno", None) is not None and e.strerror is not None else None
        message = message_of(e)
        return {"op": op["op"], "ok": False, "errno": errno_, "message": message, "type": type(e).__name__}


def main():
    spec = json.loads(sys.argv[1])
    if os.environ.get("S3GW_PARAMIKO_LOG"):
        paramiko.util.log_to_file(os.environ["S3GW_PARAMIKO_LOG"], level=logging.DEBUG)
    if spec["scenario"] != "ops":
        raise ValueError("unknown scenario " + spec["scenario"])
    t = connect(spec)
    try:
        sftp = paramiko.SFTPClient.from_transport(t)
        sftp.get_channel().settimeout(TIMEOUT)
        results = [run_op(sftp, op) for op in spec.get("ops", [])]
        if t.is_active():
            sftp.close()
        client = {"version": paramiko.__version__, "remoteVersion": t.remote_version}
    finally:
        t.close()
    print(json.dumps({"ok": True, "result": {"client": client, "results": results}}), flush=True)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:
        print(json.dumps({"ok": False, "error": repr(e), "trace": traceback.format_exc()}), flush=True)
        sys.exit(1)
