#!/usr/bin/env python3
"""test_server_cmd.py SRC BIN - `tapbridge server` as a process, checked with Python's own
ssl module (an independent TLS stack and SHA-256): the first start makes the certificate
and prints its fingerprint, which must equal the SHA-256 of the DER certificate the server
presents; a TLS 1.2 client is refused; the placeholder handlers answer honestly (an empty
MENU and a NOTICE, PONG, an empty HISTORY, a failed relay, ERROR for an SE_RESP nobody
asked for); /health answers 200; SIGTERM ends a session with ERROR 15 and exits 0; a
second start keeps the fingerprint; log lines carry the session id and no payload.
Prints one line per check and `N passed, N failed`."""
import hashlib
import os
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

SRC, BIN = sys.argv[1], sys.argv[2]
passed = failed = 0


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
        print("ok: " + what)
    else:
        failed += 1
        print("FAIL: " + what)


def start(state):
    p = subprocess.Popen([BIN, "server", "--state", state, "--listen", "127.0.0.1:0",
                          "--http", "127.0.0.1:0", "--idle", "30"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    while True:
        line = p.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if line.startswith("listening http"):
            break
    return p, lines


def addr(lines, what):
    for line in lines:
        if line.startswith("listening " + what + " "):
            host, port = line.split()[2].rsplit(":", 1)
            return host, int(port)
    return None


def tls_connect(hostport, max_version=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the pin is checked by hand below
    if max_version is not None:
        ctx.maximum_version = max_version
    s = socket.create_connection(hostport, timeout=5)
    return ctx.wrap_socket(s)


def frame(t, payload=b""):
    return struct.pack(">IB", len(payload) + 1, t) + payload


def recv_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            return None
        b += c
    return b


def recv_frame(s):
    try:
        h = recv_exact(s, 5)
    except (ssl.SSLError, ConnectionError):
        return None
    if h is None:
        return None
    n, t = struct.unpack(">IB", h)
    p = recv_exact(s, n - 1) if n > 1 else b""
    return t, p


HELLO = frame(0x01, struct.pack(">H", 1) + bytes.fromhex("5345000000004321") + b"\x03" + b"1.0")

work = tempfile.mkdtemp(prefix="tb_srvcmd_")
state = os.path.join(work, "state")
try:
    # Usage errors.
    r = subprocess.run([BIN, "server"], capture_output=True, text=True)
    check(r.returncode == 2 and "usage" in r.stderr, "no --state: usage, exit 2")
    r = subprocess.run([BIN, "server", "--state", os.path.join(work, "other"), "--listen", "nonsense"],
                       capture_output=True, text=True, timeout=20)
    check(r.returncode == 1 and "cannot listen" in r.stderr, "bad --listen: exit 1")

    p, out = start(state)
    fp = [l for l in out if l.startswith("fingerprint SHA256:")]
    check(any(l.startswith("created certificate ") for l in out), "first start: certificate created")
    check(len(fp) == 1 and re.fullmatch(r"fingerprint SHA256:[0-9A-F]{64}", fp[0]) is not None,
          "fingerprint line: 64 uppercase hex digits")
    fingerprint = fp[0].split(":", 1)[1] if fp else ""
    check(oct(os.stat(os.path.join(state, "key.pem")).st_mode & 0o777) == "0o600", "key.pem is 0600")
    phones, http = addr(out, "phones"), addr(out, "http")

    s = tls_connect(phones)
    der = s.getpeercert(binary_form=True)
    check(s.version() == "TLSv1.3", "TLS 1.3 negotiated")
    check(hashlib.sha256(der).hexdigest().upper() == fingerprint,
          "printed fingerprint = SHA-256 of the DER certificate presented")

    try:
        t12 = tls_connect(phones, ssl.TLSVersion.TLSv1_2)
        t12.close()
        check(False, "TLS 1.2 client refused")
    except (ssl.SSLError, ConnectionError):
        check(True, "TLS 1.2 client refused")

    s.sendall(HELLO)
    m1, m2 = recv_frame(s), recv_frame(s)
    check(m1 == (0x81, b"\x00"), "HELLO -> MENU with zero services")
    check(m2 == (0x85, b"server has no services yet"), "then NOTICE: no services yet")
    s.sendall(frame(0x40, b"12345678"))
    check(recv_frame(s) == (0x41, b"12345678"), "PING -> PONG")
    s.sendall(frame(0x05, struct.pack(">QB", 0, 10)))
    check(recv_frame(s) == (0x84, b"\x00\x00"), "HISTORY_REQ -> empty HISTORY")
    s.sendall(frame(0x02, struct.pack(">I", 5)))
    check(recv_frame(s) == (0x85, b"no such service"), "SELECT -> NOTICE no such service")
    s.sendall(frame(0x04, struct.pack(">II", 77, 1) + b"\xAA\xBB"))
    check(recv_frame(s) == (0x83, struct.pack(">IB", 77, 1)), "RELAY_UP -> RELAY_DOWN fail")
    s.sendall(frame(0x03, struct.pack(">I", 1) + b"\x90\x00"))
    e = recv_frame(s)
    check(e is not None and e[0] == 0x86 and e[1][:2] == b"\x00\x0b", "SE_RESP unasked -> ERROR 11")
    check(recv_frame(s) is None, "then the session is closed")
    s.close()

    with urllib.request.urlopen("http://%s:%d/health" % http, timeout=5) as resp:
        check(resp.status == 200 and resp.read() == b"ok\n", "/health -> 200 ok")
    try:
        urllib.request.urlopen("http://%s:%d/nope" % http, timeout=5)
        check(False, "/nope -> 404")
    except urllib.error.HTTPError as err:
        check(err.code == 404, "/nope -> 404")

    s = tls_connect(phones)
    s.sendall(HELLO)
    recv_frame(s), recv_frame(s)
    p.send_signal(signal.SIGTERM)
    e = recv_frame(s)
    check(e is not None and e[0] == 0x86 and e[1] == b"\x00\x0f" + b"server shutting down",
          "SIGTERM: open session gets ERROR 15 server shutting down")
    s.close()
    try:
        rc = p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = None
    check(rc == 0, "SIGTERM: exit 0 (got %s)" % rc)
    err = p.stderr.read()
    log = [l for l in err.splitlines() if l.startswith("srv ")]
    check(any("event=hello se=5345000000004321" in l for l in log), "log: hello line with the se serial")
    check(all(re.match(r"srv (session=\d+ |http )?event=", l) for l in log), "log: one event per line")
    check(not any("AABB" in l.upper() or "12345678" in l for l in log), "log: no payload bytes")
    others = [l for l in err.splitlines() if not l.startswith("srv ") and not l.startswith("tapbridge server:")]
    check(others == [], "stderr: nothing but log lines (%s)" % others[:3])

    p, out = start(state)
    check(not any(l.startswith("created") for l in out), "second start: no new certificate")
    check(("fingerprint SHA256:" + fingerprint) in out, "second start: same fingerprint")
    p.send_signal(signal.SIGINT)
    check(p.wait(timeout=10) == 0, "SIGINT: exit 0")
    p.stdout.close()
    p.stderr.close()
finally:
    shutil.rmtree(work, ignore_errors=True)

print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
