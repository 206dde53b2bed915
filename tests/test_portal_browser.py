#!/usr/bin/env python3
"""test_portal_browser.py SRC BIN - the portal in a real browser (headless Chromium).

A deployment made with `tapbridge admin` (init, se-register, reader-register,
service-add), data put into its database (a top-up and a payment in the ledger, a year of
history, tickets valid/used/expired, a personal-auth record with markup in it), then
`tapbridge server --portal` and Chromium driven through the DevTools protocol over a
pipe (--remote-debugging-pipe: clicks and typing are real input events on the page's own
forms; the page runs no script). Each step keeps the rendered DOM (the serialisation
--dump-dom prints) and a screenshot of a 360-pixel-wide phone screen in
BUILD/portal-artefacts/, and asserts on the DOM. One step uses `chromium --dump-dom
--screenshot` itself. Then the refusals over plain HTTPS (urllib / http.client): a used
login link replayed, a cookie after sign-out, POSTs without or with another session's
CSRF token, another se's history, wrong methods, an oversize body, path tricks, bad
cookies, an expired link: each with its status, and the database unchanged.
"""
import http.client
import os
import re
import shutil
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # nothing written into the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "util"))
from portal_browser import Browser, text_of  # noqa: E402  (tests/util/portal_browser.py)

SRC, BIN = sys.argv[1], os.path.abspath(sys.argv[2])
ART = os.path.join(os.path.dirname(BIN), "portal-artefacts")
SE_A, SE_B = "5345000000000001", "5345000000000002"
T_START = time.time()
passed = 0
failed = 0


def ok(cond, what):
    global passed, failed
    if cond:
        passed += 1
        print("ok: " + what)
    else:
        failed += 1
        print("FAIL: " + what)
    return cond


def run(*args):
    r = subprocess.run([BIN] + list(args), capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError("tapbridge %s: %s%s" % (" ".join(args), r.stdout, r.stderr))
    return r.stdout


# ------------------------------------------------------------ plain HTTPS ---

CTX = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
CTX.check_hostname = False
CTX.verify_mode = ssl.CERT_NONE


def hreq(host, port, method, path, body=None, cookie=None, ctype=None, headers=None):
    c = http.client.HTTPSConnection(host, port, context=CTX, timeout=10)
    h = dict(headers or {})
    if cookie:
        h["Cookie"] = cookie
    if body is not None:
        h["Content-Type"] = ctype or "application/x-www-form-urlencoded"
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    data = r.read().decode("utf-8", "replace")
    out = (r.status, dict((k.lower(), v) for k, v in r.getheaders()), data)
    c.close()
    return out


def raw_status(host, port, text):
    """Sends text as is and reads the status line (the server may answer before the
    body it announced has come)."""
    import socket
    with socket.create_connection((host, port), timeout=10) as raw:
        with CTX.wrap_socket(raw) as s:
            s.sendall(text.encode())
            line = s.recv(64).decode("latin-1")
    m = re.match(r"HTTP/1\.[01] (\d{3})", line)
    return int(m.group(1)) if m else 0


def login_http(host, port, link):
    path = link.split(str(port), 1)[1]
    st, hd, _ = hreq(host, port, "GET", path)
    if st != 303 or "set-cookie" not in hd:
        raise RuntimeError("login failed: %d" % st)
    cookie = hd["set-cookie"].split(";")[0]
    st, _, page = hreq(host, port, "GET", "/", cookie=cookie)
    m = re.search(r'name="csrf" value="([0-9A-F]{64})"', page)
    return cookie, m.group(1), path


# ------------------------------------------------------------------ fixtures ---

def seed(dbpath, now):
    """A top-up of 1000 and a payment of 300 in the ledger, 40 older taps over 300
    days, 3 tickets, a personal-auth record; se B gets one top-up of 77777."""
    db = sqlite3.connect(dbpath)
    a, b = bytes.fromhex(SE_A), bytes.fromhex(SE_B)
    cur = db.cursor()
    for name, kind in (("F", 3), ("P:" + SE_A, 1), ("P:" + SE_B, 1), ("V:00000001", 2)):
        cur.execute("INSERT INTO accounts (name, kind) VALUES (?, ?)", (name, kind))
    acct = dict(cur.execute("SELECT name, id FROM accounts").fetchall())

    def transfer(key, kind, amount, se, reader, legs, when):
        cur.execute("INSERT INTO transfers (key, kind, amount, se, reader, service, rec_time, "
                    "refund_of, result, created) VALUES (?, ?, ?, ?, ?, 1, ?, NULL, 0, ?)",
                    (key, kind, amount, se, reader, when, when))
        tid = cur.lastrowid
        for i, (acc, amt) in enumerate(legs, 1):
            cur.execute("INSERT INTO postings (transfer_id, leg, account, amount) VALUES (?, ?, ?, ?)",
                        (tid, i, acct[acc], amt))
        cur.execute("INSERT INTO transfer_seals (transfer_id) VALUES (?)", (tid,))
        return tid

    def event(when, kind, se, reader, service, amount, ref=0):
        cur.execute("INSERT INTO history (time, kind, se, reader, service, amount, ref, key) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, NULL)", (when, kind, se, reader, service, amount, ref))

    for i in range(40):  # taps over 300 days: beyond 26 weeks and 20 rows
        event(now - 86400 * (300 - 7 * i), 1, a, 7, 1, 0)
    t1 = transfer("S:%s:00000001" % SE_A, 1, 1000, a, 0, [("F", -1000), ("P:" + SE_A, 1000)], now - 7200)
    event(now - 7200, 2, a, 0, 1, 1000, t1)
    t2 = transfer("R:00000007:00000001", 2, 300, a, 7, [("P:" + SE_A, -300), ("V:00000001", 300)], now - 3600)
    event(now - 3600, 3, a, 7, 1, 300, t2)
    t3 = transfer("S:%s:00000001" % SE_B, 1, 77777, b, 0, [("F", -77777), ("P:" + SE_B, 77777)], now - 60)
    event(now - 60, 2, b, 0, 1, 77777, t3)
    for key, frm, until, uses, state in (("I:1", now - 3600, now + 80000, 1, 1),
                                         ("I:2", now - 90000, now - 4000, 0, 2),
                                         ("I:3", now - 200000, now - 100000, 1, 1)):
        cur.execute("INSERT INTO tickets (key, se, service, valid_from, valid_until, uses_left, "
                    "state) VALUES (?, ?, 2, ?, ?, ?, ?)", (key, a, frm, until, uses, state))
    cur.execute("INSERT INTO pauth (se, identifier) VALUES (?, ?)", (a, "<b>Hanako</b> & co"))
    cur.execute("INSERT INTO pauth_attrs (se, name, value) VALUES (?, 'birth', ?)", (a, b"1990-04-01"))
    cur.execute("INSERT INTO pauth_attrs (se, name, value) VALUES (?, 'name', ?)",
                (a, "Yamada Hanako \u5c71\u7530".encode()))
    cur.execute("INSERT INTO pauth_visible (class, name) VALUES (1, 'name')")
    db.commit()
    db.close()


def snapshot(dbpath):
    db = sqlite3.connect(dbpath)
    s = (db.execute("SELECT count(*), coalesce(max(id), 0) FROM history").fetchone(),
         db.execute("SELECT hex(serial), state, pending FROM ses ORDER BY serial").fetchall(),
         db.execute("SELECT count(*) FROM pauth").fetchone(),
         db.execute("SELECT count(*) FROM pauth_attrs").fetchone(),
         db.execute("SELECT hex(se), tries FROM unlock_codes").fetchall(),
         db.execute("SELECT name, balance FROM accounts ORDER BY name").fetchall(),
         db.execute("SELECT value FROM meta WHERE name = 'deny_version'").fetchone())
    db.close()
    return s


def query(dbpath, sql, args=()):
    db = sqlite3.connect(dbpath)
    r = db.execute(sql, args).fetchall()
    db.close()
    return r


# --------------------------------------------------------------------- main ---

def main():
    chromium = shutil.which("chromium")
    if chromium is None:
        print("FAIL: chromium is not installed (apt-get install chromium; tools/deps.sh)")
        return 1
    if "--portal" not in subprocess.run([BIN, "server", "--help"], capture_output=True,
                                        text=True).stdout:
        print("FAIL: `tapbridge server` has no --portal option (portal_start is not wired)")
        return 1
    # Only this test's own artefacts go (NN-name.*): test_portal_flows writes flows-* here.
    os.makedirs(ART, exist_ok=True)
    for f in os.listdir(ART):
        if f[:2].isdigit() and f[2:3] == "-":
            os.remove(os.path.join(ART, f))
    top = tempfile.mkdtemp(prefix="tb-portal-")
    dep, dbpath = os.path.join(top, "dep"), os.path.join(top, "dep", "srv.db")
    srv = browser = None
    log = open(os.path.join(ART, "chromium.log"), "w")
    try:
        run("admin", "init", "--dir", dep)
        run("admin", "se-register", "--dir", dep, "--image", os.path.join(top, "a.img"), "--serial", SE_A)
        run("admin", "se-register", "--dir", dep, "--image", os.path.join(top, "b.img"), "--serial", SE_B)
        run("admin", "reader-register", "--dir", dep, "--id", "7", "--class", "1")
        run("admin", "service-add", "--dir", dep, "--id", "1", "--kind", "e-money", "--name", "Top-up",
            "--price", "1=500")
        run("admin", "service-add", "--dir", dep, "--id", "2", "--kind", "ticket", "--name",
            "Transit day pass", "--price", "1=250")
        run("admin", "service-add", "--dir", dep, "--id", "3", "--kind", "personal-auth", "--name",
            "ID check")
        seed(dbpath, int(time.time()))
        srv_log = open(os.path.join(ART, "server.log"), "w")
        srv = subprocess.Popen([BIN, "server", "--state", os.path.join(dep, "state"), "--db",
                                "sqlite:" + dbpath, "--listen", "127.0.0.1:0", "--http", "off",
                                "--portal", "127.0.0.1:0"],
                               stdout=subprocess.PIPE, stderr=srv_log, text=True)
        base = None
        for line in srv.stdout:
            m = re.match(r"listening portal (https://(127\.0\.0\.1):(\d+))", line)
            if m:
                base, host, port = m.group(1), m.group(2), int(m.group(3))
                break
        if not ok(base is not None, "server listens for the portal"):
            return 1
        browser = Browser(chromium, os.path.join(top, "profile"), log, art=ART)
        browser_steps(browser, base, dep, dbpath)
        refusals(host, port, base, dep, dbpath, chromium, top, log)
    finally:
        if browser is not None:
            browser.close()
        if srv is not None:
            srv.terminate()
            try:
                srv.wait(timeout=10)
            except subprocess.TimeoutExpired:
                srv.kill()
        shutil.rmtree(top, ignore_errors=True)
        log.close()
    print("%d passed, %d failed, %.1f s; artefacts in %s" % (passed, failed, time.time() - T_START, ART))
    return 1 if failed else 0


def browser_steps(b, base, dep, dbpath):
    link = run("admin", "portal-login", "--dir", dep, "--se", SE_A).strip().splitlines()
    ok(link[0].startswith("customer login link (one-time"), "admin prints a labelled customer link")
    b.go(link[-1])
    ok(b.url() == base + "/", "the link signs in and lands on the wallet page")
    d = b.keep("01-wallet")
    t = text_of(d)
    ok('id="balance">700<' in d, "wallet: the confirmed balance is 700 (1000 top-up, 300 paid)")
    ok("Active" in t and "pending" in t, "wallet: state Active, pending explained")
    ok("Top-up" in t and "Transit day pass" in t and "ID check" in t, "wallet: the service menu")
    c = b.cookie(base)
    ok(c is not None and c["httpOnly"] and c["secure"] and c["sameSite"] == "Strict",
       "the session cookie is HttpOnly, Secure, SameSite=Strict")

    b.click('a[href="/history"]')
    d = b.keep("02-history")
    t = text_of(d)
    ok("+1000" in t and "\u2212300" in t and "reader 7" in t and "Top-up" in t,
       "history: the top-up and the payment with reader, service and amount")
    ok(d.count("<tr>") == 26, "history: 25 rows on the first page")
    b.click("#older")
    d = b.keep("03-history-oldest")
    oldest = time.strftime("%Y-%m-%d", time.gmtime(int(time.time()) - 86400 * 300))
    ok(oldest in d and 'id="older"' not in d, "history: paging reaches the tap 300 days back")
    st, hd, csv = hreq(base.split("//")[1].split(":")[0], int(base.rsplit(":", 1)[1]), "GET",
                       "/history.csv", cookie="tbp=" + c["value"])
    rows = csv.strip().split("\r\n")
    ok(st == 200 and hd.get("content-type", "").startswith("text/csv") and len(rows) == 43 and
       "Payment" in csv and ",-300" in csv, "history CSV: all 42 events and a header")

    b.click('a[href="/tickets"]')
    d = b.keep("04-tickets")
    t = text_of(d)
    ok("Valid" in t and "Used" in t and "Expired" in t, "tickets: valid, used and expired")

    b.click('a[href="/wallet"]')
    b.keep("05-wallet-active")
    b.click("#lock")
    d = b.keep("06-lock-pending")
    ok(b.url() == base + "/wallet" and "Lock pending" in d, "lock: the page shows Lock pending")
    ok(query(dbpath, "SELECT state, pending FROM ses WHERE serial = ?", (bytes.fromhex(SE_A),)) ==
       [(2, 1)], "lock: the se is locked at the server with the pending mark")
    deny = run("admin", "deny-list", "--dir", dep, "--reader", "7")
    ok(SE_A in deny and SE_B not in deny, "lock: the signed deny list for reader 7 holds the se")

    code = re.search(r"unlock code for %s: (\d{8})" % SE_A,
                     run("admin", "portal-code", "--dir", dep, "--se", SE_A)).group(1)
    b.type("#code", "1" + code[1:] if code[0] != "1" else "2" + code[1:])
    b.click("#unlock")
    d = b.keep("07-unlock-wrong-code")
    ok("Not unlocked" in d and "4 tries left" in d, "unlock: a wrong code is refused, tries counted")
    b.go(base + "/wallet")
    b.type("#code", code[:4] + " " + code[4:])
    b.click("#unlock")
    d = b.keep("08-unlocked")
    ok('id="state">Active<' in d, "unlock: the right code unlocks")
    ok(query(dbpath, "SELECT state, pending FROM ses WHERE serial = ?", (bytes.fromhex(SE_A),)) ==
       [(1, 0)], "unlock: active, nothing pending (the se never saw the lock)")

    b.click('a[href="/personal"]')
    d = b.keep("09-personal")
    ok("&lt;b&gt;Hanako&lt;/b&gt; &amp; co" in d and "<b>Hanako" not in d,
       "personal data: shown, markup escaped")
    ok("Yamada Hanako \u5c71\u7530" in d and "1990-04-01" in d, "personal data: every attribute")
    b.click("#confirm", loads=False)
    b.click("#delete")
    d = b.keep("10-personal-deleted")
    ok("Deleted" in d, "personal data: deleted")
    ok(query(dbpath, "SELECT count(*) FROM pauth") == [(0,)] and
       query(dbpath, "SELECT count(*) FROM pauth_attrs") == [(0,)],
       "personal data: the record and its attributes are gone from the database")
    b.click('a[href="/history"]')
    d = b.keep("11-history-deleted")
    ok("Personal data deleted" in d, "history: the deletion shows")

    b.click('button[type="submit"]')  # sign out (the header's form)
    d = b.keep("12-signed-out")
    ok("Signed out" in d and b.cookie(base) is None, "sign-out ends the session and the cookie")

    link = run("admin", "portal-login", "--dir", dep, "--operator").strip().splitlines()
    ok(link[0].startswith("operator login link"), "admin prints a labelled operator link")
    b.go(link[-1])
    d = b.keep("13-operator-ledgers")
    t = text_of(d)
    ok(b.url() == base + "/op" and "Balanced" in t and "V:00000001" in t and "300" in t,
       "operator: ledgers per service, audit balanced")
    b.click('a[href="/op/ses"]')
    d = b.keep("14-operator-ses")
    ok(SE_A in d and SE_B in d and "(empty)" in d, "operator: ses with state, empty deny list")
    b.click('a[href="/op/readers"]')
    d = b.keep("15-operator-readers")
    ok(">7<" in d and "not reported" in d, "operator: readers with last contact")
    b.go(base + "/history")
    d = b.keep("16-operator-on-customer-page")
    ok("Not for this sign-in" in d, "operator: customer pages are refused")


def refusals(host, port, base, dep, dbpath, chromium, top, log):
    link = run("admin", "portal-login", "--dir", dep, "--se", SE_A).strip().splitlines()[-1]
    cookie, csrf, path = login_http(host, port, link)
    before = snapshot(dbpath)

    st, hd, page = hreq(host, port, "GET", path)
    ok(st == 403 and "set-cookie" not in hd and "Link not valid" in page, "a used link replayed: 403")
    st, hd, page = hreq(host, port, "GET", "/")
    ok(hd.get("content-security-policy", "").startswith("default-src 'none'") and
       hd.get("x-content-type-options") == "nosniff" and hd.get("referrer-policy") == "no-referrer"
       and hd.get("cache-control") == "no-store", "security headers on every answer")

    st, _, page = hreq(host, port, "POST", "/lock", body="", cookie=cookie)
    ok(st == 403 and "Form expired" in page, "a POST without CSRF token: 403")
    c2, csrf2, _ = login_http(host, port, run("admin", "portal-login", "--dir", dep, "--se",
                                              SE_A).strip().splitlines()[-1])
    st, _, _ = hreq(host, port, "POST", "/lock", body="csrf=" + csrf2, cookie=cookie)
    ok(st == 403, "a POST with another session's CSRF token: 403")
    st, _, _ = hreq(host, port, "POST", "/lock", body="csrf=" + csrf, cookie=cookie,
                    headers={"Origin": "https://evil.example"})
    ok(st == 403, "a POST from another origin: 403")
    st, _, _ = hreq(host, port, "POST", "/lock", body="csrf=" + csrf, cookie=cookie,
                    headers={"Sec-Fetch-Site": "cross-site", "Origin": "null"})
    ok(st == 403, "a POST a browser marks cross-site: 403")

    st, _, page = hreq(host, port, "GET", "/history?se=" + SE_B, cookie=cookie)
    ok(st == 400 and "77777" not in page, "another se's history by query: 400")
    st, _, page = hreq(host, port, "GET", "/history", cookie=cookie)
    ok(st == 200 and "77777" not in page, "the history shows only the session's se")
    st, _, _ = hreq(host, port, "GET", "/op/ses", cookie=cookie)
    ok(st == 403, "operator pages with a customer cookie: 403")
    st, _, _ = hreq(host, port, "POST", "/op/lock", body="csrf=%s&serial=%s" % (csrf, SE_B),
                    cookie=cookie)
    ok(st == 403, "an operator lock with a customer cookie: 403")

    st, hd, _ = hreq(host, port, "PUT", "/", cookie=cookie)
    ok(st == 405 and hd.get("allow") == "GET", "PUT: 405 with Allow")
    st, hd, _ = hreq(host, port, "DELETE", "/history", cookie=cookie)
    ok(st == 405, "DELETE: 405")
    st, hd, _ = hreq(host, port, "GET", "/lock", cookie=cookie)
    ok(st == 405 and hd.get("allow") == "POST", "GET of a form target: 405")
    st, _, _ = hreq(host, port, "POST", "/lock", body="csrf=" + csrf + "&x=" + "A" * 3000,
                    cookie=cookie)
    ok(st == 413, "a form larger than any of ours: 413")
    ok(raw_status(host, port, "POST /lock HTTP/1.1\r\nHost: x\r\nCookie: %s\r\nContent-Type: "
                  "application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\ncsrf=" % cookie)
       == 413, "a body above the HTTP limit (by Content-Length): 413")
    st, _, _ = hreq(host, port, "POST", "/lock", body="csrf=" + csrf, cookie=cookie,
                    ctype="application/json")
    ok(st == 415, "a POST that is not a form: 415")
    for p in ("/../../etc/passwd", "/%2e%2e/op", "//op", "/history/..", "/style.css%00"):
        st, _, _ = hreq(host, port, "GET", p, cookie=cookie)
        ok(st == 400, "path trick %s: 400" % p)
    st, _, _ = hreq(host, port, "GET", "/admin", cookie=cookie)
    ok(st == 404, "an unknown page: 404")
    for bad in ("tbp=zz", "tbp=" + "0" * 64, cookie + "; " + cookie):
        st, _, _ = hreq(host, port, "GET", "/", cookie=bad)
        ok(st == 401, "a bad cookie (%s...): 401" % bad[:8])

    st, _, _ = hreq(host, port, "POST", "/logout", body="csrf=" + csrf, cookie=cookie)
    ok(st == 200, "sign-out")
    st, _, page = hreq(host, port, "GET", "/", cookie=cookie)
    ok(st == 401 and "Signed out" in page, "the cookie after sign-out: 401")
    st, _, _ = hreq(host, port, "POST", "/lock", body="csrf=" + csrf, cookie=cookie)
    ok(st == 401, "a lock with the cookie and token after sign-out: 401")
    ok(snapshot(dbpath) == before, "none of the refusals changed the database")

    # an expired link, in the browser through --dump-dom and --screenshot themselves
    short = run("admin", "portal-login", "--dir", dep, "--se", SE_A, "--ttl", "1").strip().splitlines()[-1]
    time.sleep(1.2)
    args = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
            "--user-data-dir=" + os.path.join(top, "profile2"), "--ignore-certificate-errors",
            "--window-size=360,740"]
    dom = subprocess.run(args + ["--dump-dom", short], capture_output=True, text=True, timeout=30).stdout
    with open(os.path.join(ART, "17-expired-link.html"), "w") as f:
        f.write(dom)
    subprocess.run(args + ["--screenshot=" + os.path.join(ART, "17-expired-link.png"), short],
                   stdout=log, stderr=log, timeout=30, cwd=top)
    ok("Link not valid" in dom and "expired" in dom, "an expired link (chromium --dump-dom): refused")
    ok(os.path.getsize(os.path.join(ART, "17-expired-link.png")) > 1000, "chromium --screenshot kept")
    st, hd, _ = hreq(host, port, "GET", short.split(str(port), 1)[1])
    ok(st == 403 and "set-cookie" not in hd, "an expired link: 403, no cookie")
    ok(snapshot(dbpath) == before, "the database is still unchanged")


if __name__ == "__main__":
    sys.exit(main())
