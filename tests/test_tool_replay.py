#!/usr/bin/env python3
"""test_tool_replay.py SRC BIN - `tapbridge tool scp03 replay` against the nine pySim
sessions in tests/vectors/scp03-sessions.json: every printed value must equal the
vector's, and a bad card cryptogram, pseudo-random challenge, R-MAC or R-ENC padding
must each stop the tool with its own error line. The bad-padding response is built here
with a small pure-Python AES/CMAC (stdlib only), itself checked against FIPS-197 and
the vectors first. Prints one line per check and `N passed, N failed`."""
import json
import subprocess
import sys

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


# ---- a small AES (encryption only) and AES-CMAC, enough to forge one response ----

def _sbox():
    box, p, q = [0] * 256, 1, 1
    rotl = lambda x, s: ((x << s) | (x >> (8 - s))) & 0xFF
    while True:
        p = p ^ ((p << 1) & 0xFF) ^ (0x1B if p & 0x80 else 0)
        q ^= q << 1
        q ^= q << 2
        q ^= q << 4
        q &= 0xFF
        if q & 0x80:
            q ^= 0x09
        box[p] = q ^ rotl(q, 1) ^ rotl(q, 2) ^ rotl(q, 3) ^ rotl(q, 4) ^ 0x63
        if p == 1:
            break
    box[0] = 0x63
    return box


SBOX = _sbox()


def _xtime(a):
    return ((a << 1) ^ 0x1B) & 0xFF if a & 0x80 else a << 1


def _expand(key):
    nk = len(key) // 4
    nr = nk + 6
    w = [list(key[4 * i:4 * i + 4]) for i in range(nk)]
    rcon = 1
    for i in range(nk, 4 * (nr + 1)):
        t = list(w[i - 1])
        if i % nk == 0:
            t = [SBOX[b] for b in t[1:] + t[:1]]
            t[0] ^= rcon
            rcon = _xtime(rcon)
        elif nk > 6 and i % nk == 4:
            t = [SBOX[b] for b in t]
        w.append([a ^ b for a, b in zip(w[i - nk], t)])
    return [sum(w[4 * r:4 * r + 4], []) for r in range(nr + 1)]


def aes_encrypt(key, block):
    rks = _expand(key)
    s = [a ^ b for a, b in zip(block, rks[0])]
    for r in range(1, len(rks)):
        s = [SBOX[b] for b in s]
        s = [s[(i % 4) + 4 * (((i // 4) + (i % 4)) % 4)] for i in range(16)]
        if r != len(rks) - 1:
            out = []
            for c in range(4):
                a = s[4 * c:4 * c + 4]
                x = a[0] ^ a[1] ^ a[2] ^ a[3]
                out += [a[k] ^ x ^ _xtime(a[k] ^ a[(k + 1) % 4]) for k in range(4)]
            s = out
        s = [a ^ b for a, b in zip(s, rks[r])]
    return bytes(s)


def _dbl(b):
    n = (int.from_bytes(b, "big") << 1) & ((1 << 128) - 1)
    if b[0] & 0x80:
        n ^= 0x87
    return n.to_bytes(16, "big")


def _xor(a, b):
    return bytes(x ^ y for x, y in zip(a, b))


def aes_cmac(key, msg):
    k1 = _dbl(aes_encrypt(key, bytes(16)))
    k2 = _dbl(k1)
    n = max(1, (len(msg) + 15) // 16)
    last = msg[16 * (n - 1):]
    last = _xor(last, k1) if len(last) == 16 else _xor(last + b"\x80" + bytes(15 - len(last)), k2)
    x = bytes(16)
    for i in range(n - 1):
        x = aes_encrypt(key, _xor(x, msg[16 * i:16 * i + 16]))
    return aes_encrypt(key, _xor(x, last))


def aes_cbc_encrypt(key, iv, data):
    out, x = b"", iv
    for i in range(0, len(data), 16):
        x = aes_encrypt(key, _xor(x, data[i:i + 16]))
        out += x
    return out


# ---- the tool ----

def trace_of(s, init_response=None, responses=None):
    i, p = s["inputs"], s["params"]
    lines = ["# " + s["id"],
             "key-enc " + i["key_enc"], "key-mac " + i["key_mac"], "key-dek " + i["key_dek"],
             "host-challenge " + i["host_challenge"],
             "init-response " + (init_response or i["initialize_update_response"]),
             "level " + p["security_level_p1"], "aid " + p["security_domain_aid"], ""]
    for k, st in enumerate(s["steps"]):
        lines.append("command " + st["plain_command"])
        resp = (responses or {}).get(k, st.get("card_response"))
        if resp:
            lines.append("response " + resp)
    return "\n".join(lines) + "\n"


def run(text, args=("tool", "scp03", "replay")):
    r = subprocess.run([BIN] + list(args), input=text, capture_output=True, text=True)
    values = [ln.split(" ", 1) for ln in r.stdout.splitlines() if ln and not ln.startswith("#")]
    return r.returncode, values, r.stderr


def session_checks(s):
    sid, ex = s["id"], s["expected"]
    rc, values, err = run(trace_of(s))
    check(rc == 0, "%s: exit status 0 (%d %s)" % (sid, rc, err.strip()))
    got = dict()
    wrapped, unwrapped = [], []
    for name, val in values:
        if name == "wrapped":
            wrapped.append(val)
        elif name == "unwrapped":
            unwrapped.append(val)
        else:
            got[name] = val
    check(values[:1] and values[0][0] == "initialize-update", "%s: initialize-update first" % sid)
    for name, key in (("initialize-update", "initialize_update_command"), ("s-enc", "s_enc"),
                      ("s-mac", "s_mac"), ("s-rmac", "s_rmac"),
                      ("card-cryptogram", "card_cryptogram"), ("host-cryptogram", "host_cryptogram"),
                      ("external-authenticate", "external_authenticate_command")):
        check(got.get(name) == ex[key], "%s: %s %s" % (sid, name, got.get(name)))
    want_w = [st["wrapped_command"] for st in s["steps"]]
    check(len(wrapped) == len(want_w), "%s: %d wrapped lines" % (sid, len(want_w)))
    for k, (g, w) in enumerate(zip(wrapped, want_w)):
        check(g == w, "%s: step %d wrapped %s" % (sid, k, g))
    want_u = [st["plain_response"] for st in s["steps"] if "card_response" in st]
    check(len(unwrapped) == len(want_u) and len(want_u) > 0, "%s: %d unwrapped lines" % (sid, len(want_u)))
    for k, (g, w) in enumerate(zip(unwrapped, want_u)):
        # plain_response in the JSON already carries the status word
        check(w.endswith("9000") and g == w, "%s: response %d unwrapped %s" % (sid, k, g))


def expect_error(text, line, what, status=1):
    rc, _, err = run(text)
    check(rc == status and line in err.splitlines(), "%s -> exit %d, %r (got %d, %r)"
          % (what, status, line, rc, err.strip()))


def flip(hexstr, byte_index):
    b = bytearray.fromhex(hexstr)
    b[byte_index] ^= 0x01
    return b.hex().upper()


def negative_checks(sessions):
    s = sessions[0]
    iu = s["inputs"]["initialize_update_response"]
    # KDD(10) KVN 03 i, card challenge(8) at 13, card cryptogram(8) at 21, counter at 29
    expect_error(trace_of(s, init_response=flip(iu, 21)), "error: card cryptogram does not verify",
                 "flipped card cryptogram byte")
    expect_error(trace_of(s, init_response=flip(iu, 31)),
                 "error: pseudo-random card challenge does not verify", "flipped sequence counter byte")
    resp = s["steps"][0]["card_response"]
    nbytes = len(resp) // 2
    expect_error(trace_of(s, responses={0: flip(resp, nbytes - 3)}), "error: R-MAC does not verify",
                 "flipped R-MAC byte")
    expect_error(trace_of(s, responses={0: flip(resp, 0)}), "error: R-MAC does not verify",
                 "flipped response data byte")

    # Bad R-ENC padding under a valid R-MAC, level 33 AES-128.
    s33 = next(x for x in sessions if x["id"] == "pysim-aes128-s8-p1_33")
    ex, st = s33["expected"], s33["steps"][0]
    s_enc, s_rmac = bytes.fromhex(ex["s_enc"]), bytes.fromhex(ex["s_rmac"])
    chain = bytes.fromhex(st["mac_chaining_value_after"])
    icv = aes_encrypt(s_enc, bytes.fromhex(st["response_counter_block"]))
    check(aes_encrypt(bytes(range(16)), bytes.fromhex("00112233445566778899AABBCCDDEEFF")).hex()
          == "69c4e0d86a7b0430d8cdb78070b4c55a", "python AES: FIPS-197 C.1")
    check(icv.hex().upper() == st["response_icv"], "python AES: the vector's response ICV")
    real = bytes.fromhex(st["card_response"])
    check(aes_cmac(s_rmac, chain + real[:-10] + real[-2:])[:8] == real[-10:-2],
          "python CMAC: the vector's R-MAC")
    ct = aes_cbc_encrypt(s_enc, icv, bytes([0xAA]) * 16)
    forged = ct + aes_cmac(s_rmac, chain + ct + b"\x90\x00")[:8] + b"\x90\x00"
    expect_error(trace_of(s33, responses={0: forged.hex().upper()}),
                 "error: secure messaging padding is wrong", "R-ENC data with bad padding")

    # Trace format errors.
    text = trace_of(s).replace("level 11\n", "")
    expect_error(text, "error: missing directive: level", "missing level")
    expect_error("key-enc 00\n", "error: key-enc: too short", "short key")
    expect_error(trace_of(s).replace("aid ", "app-id "), "error: unknown directive: app-id",
                 "unknown directive")
    expect_error("response 9000\n", "error: response without a command before it", "lone response")
    rc, _, _ = run("", args=("tool", "scp03"))
    check(rc == 2, "usage error exits 2 (%d)" % rc)
    rc, _, _ = run("", args=("tool", "scp03", "replay", "extra"))
    check(rc == 2, "extra argument exits 2 (%d)" % rc)
    rc, _, err = run("")
    check(rc == 1 and err.startswith("error: missing directive"), "empty trace -> error (%d)" % rc)


def main():
    with open(SRC + "/tests/vectors/scp03-sessions.json") as f:
        sessions = json.load(f)
    check(len(sessions) == 9, "nine sessions in the vector file")
    for s in sessions:
        session_checks(s)
    negative_checks(sessions)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
