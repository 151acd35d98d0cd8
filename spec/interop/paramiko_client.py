#!/usr/bin/env python3
"""Drives paramiko against the s3gw test server for spec/interop/paramiko.test.ts.

Input: one JSON object in argv[1]:
  port, user, password               where and who
  kex, cipher, mac, hostKey          each forces paramiko's list to that one name (optional)
  rekeyBytes                         overrides Packetizer.REKEY_BYTES after login (optional)
  ops                                a list of {"op": "sink", "path": ...}, {"op": "source"},
                                     {"op": "echo", "path": ..., "renegotiate": bool}
Output: one JSON line on stdout, {"ok": true, "client": {...}, "results": [...]} or
{"ok": false, "error": ...}. Hashing the expected bytes is the caller's job: this script only
reports what came back. S3GW_PARAMIKO_LOG=<file> writes paramiko's debug log there.
"""
import hashlib
import json
import logging
import os
import socket
import sys
import threading
import time
import traceback

import paramiko

TIMEOUT = 20
CHUNK = 32 * 1024


def connect(spec):
    sock = socket.create_connection(("127.0.0.1", spec["port"]), timeout=TIMEOUT)
    t = paramiko.Transport(sock)
    opts = t.get_security_options()
    if spec.get("kex"):
        opts.kex = (spec["kex"],)
    if spec.get("cipher"):
        opts.ciphers = (spec["cipher"],)
    if spec.get("mac"):
        opts.digests = (spec["mac"],)
    if spec.get("hostKey"):
        opts.key_types = (spec["hostKey"],)
    t.start_client(timeout=TIMEOUT)
    t.auth_password(spec["user"], spec["password"])
    if not t.is_authenticated():
        raise RuntimeError("not authenticated")
    return t


def open_subsystem(t, name):
    ch = t.open_session(timeout=TIMEOUT)
    ch.settimeout(TIMEOUT)
    ch.invoke_subsystem(name)
    return ch


def read_to_eof(ch, h=None):
    """Reads until EOF; returns the bytes (without h) or the byte count (with h)."""
    out = bytearray()
    n = 0
    while True:
        d = ch.recv(65536)
        if not d:
            break
        if h is None:
            out += d
        else:
            h.update(d)
            n += len(d)
    return bytes(out) if h is None else n


def op_sink(t, op):
    with open(op["path"], "rb") as f:
        data = f.read()
    ch = open_subsystem(t, "test-sink")
    ch.sendall(data)
    ch.shutdown_write()
    out = read_to_eof(ch)
    status = ch.recv_exit_status()
    ch.close()
    return {"op": "sink", "output": out.decode("latin1"), "exit": status}


def op_source(t, _op):
    ch = open_subsystem(t, "test-source")
    ch.shutdown_write()
    h = hashlib.sha256()
    n = read_to_eof(ch, h)
    status = ch.recv_exit_status()
    ch.close()
    return {"op": "source", "sha256": h.hexdigest(), "bytes": n, "exit": status}


def settle(t):
    """Stops volume-triggered rekeys and waits out any key exchange paramiko has started.

    paramiko's transport thread answers CHANNEL_CLOSE through _send_user_message, which blocks
    while paramiko's own key exchange runs, so the thread that would read the server's KEXINIT
    waits on itself until clear_to_send_timeout (paramiko issue #822, still open in 3.5.1). Our
    echo closes the channel right after the client's EOF, so the EOF is sent only once paramiko
    is between key exchanges.
    """
    t.packetizer.__dict__.pop("REKEY_BYTES", None)
    deadline = time.time() + TIMEOUT
    while t.packetizer.need_rekey() or t.in_kex or not t.clear_to_send.is_set():
        if time.time() > deadline:
            raise RuntimeError("paramiko's key exchange did not finish")
        time.sleep(0.01)


def op_echo(t, op):
    """Streams a file into test-echo from a second thread while this one reads the echo."""
    with open(op["path"], "rb") as f:
        data = f.read()
    ch = open_subsystem(t, "test-echo")
    errors = []
    renegotiated = []

    def writer():
        try:
            half = len(data) // 2
            for i in range(0, half, CHUNK):
                ch.sendall(data[i : min(i + CHUNK, half)])
            if op.get("renegotiate"):
                # Both directions are busy here: this thread's data is in flight and the
                # echo of it is streaming back while the keys change.
                t.renegotiate_keys()
                renegotiated.append(True)
            for i in range(half, len(data), CHUNK):
                ch.sendall(data[i : i + CHUNK])
        except Exception as e:  # reported, and the reader then sees a short echo
            errors.append(repr(e))

    th = threading.Thread(target=writer, daemon=True)
    th.start()
    h = hashlib.sha256()
    n = 0
    while n < len(data):
        try:
            d = ch.recv(min(65536, len(data) - n))
        except socket.timeout:
            raise RuntimeError(f"the echo stalled after {n} of {len(data)} bytes") from None
        if not d:
            break
        h.update(d)
        n += len(d)
    th.join(TIMEOUT)
    if errors:
        raise RuntimeError("writer failed: " + errors[0])
    settle(t)
    ch.shutdown_write()
    # Anything after the bytes sent would be an echo fault: it goes into the digest too.
    n += read_to_eof(ch, h)
    status = ch.recv_exit_status()
    ch.close()
    return {
        "op": "echo",
        "sha256": h.hexdigest(),
        "bytes": n,
        "exit": status,
        "renegotiated": bool(renegotiated),
    }


OPS = {"sink": op_sink, "source": op_source, "echo": op_echo}


def main():
    spec = json.loads(sys.argv[1])
    if os.environ.get("S3GW_PARAMIKO_LOG"):
        # A debugging aid: paramiko's own packet-level log, to a file.
        paramiko.util.log_to_file(os.environ["S3GW_PARAMIKO_LOG"], level=logging.DEBUG)
    t = connect(spec)
    try:
        if spec.get("rekeyBytes"):
            # Packetizer reads self.REKEY_BYTES: an instance attribute shadows the class's 2^29.
            t.packetizer.REKEY_BYTES = spec["rekeyBytes"]
        results = [OPS[op["op"]](t, op) for op in spec.get("ops", [])]
        client = {
            "version": paramiko.__version__,
            "remoteVersion": t.remote_version,
            "hostKeyType": t.host_key_type,
            "hostKey": t.get_remote_server_key().asbytes().hex(),
            "cipherOut": t.local_cipher,
            "cipherIn": t.remote_cipher,
            "macOut": t.local_mac,
            "macIn": t.remote_mac,
            "strictKex": t.agreed_on_strict_kex,
        }
    finally:
        t.close()
    print(json.dumps({"ok": True, "client": client, "results": results}), flush=True)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:
        print(json.dumps({"ok": False, "error": repr(e), "trace": traceback.format_exc()}), flush=True)
        sys.exit(1)
