#!/usr/bin/env python3
"""test_portal_flows.py SRC BIN - the portal against the real flows: every party a real
process on the rig of `make demo` (tools/demo-lib.sh: sam, server with --portal, gateway,
se on the direct contactless link, a phone and a reader per step) and headless Chromium
(tests/util/portal_browser.py) signed in with the link the phone asks for (`portal`).

(a) a top-up and a flow-1 payment at reader 7: the page's balance is the se's (phone
    `balance`), its history shows the payment at reader 7 with its amount;
(b) lock on the page: "Lock pending"; the phone's next contact locks the se (NOTICE
    "wallet locked ..."), the page no longer says pending; a reader tap is refused
    ("wallet locked") and nothing is booked;
(c) unlock with the operator's code (`admin portal-code`): "Unlock pending"; the phone's
    next contact unlocks the se; a reader tap pays again;
(d) personal data (`admin pauth-set`, phone `select 3`): an online identity check (flow 4)
    shows the attribute the reader's class may see; deleted on the page, the history
    says so and the next online check is refused ("personal data deleted").

Each step asserts on the rendered DOM and keeps it with a screenshot in
BUILD/portal-artefacts/flows-*.{html,png}. The rig runs in a bash process that sources
demo-lib.sh and runs the steps this script sends it (one line each, answered by `@@`
lines); TB_LINK=direct, so no pcscd. Prints `ok - ...` / `not ok - ...`; exit 1 on any
failure. TB_KEEP=1 keeps the rig's folder.
"""
import glob
import os
import queue
import re
import shlex
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True  # nothing written into the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "util"))
from portal_browser import Browser, find_chromium, text_of  # noqa: E402

SRC, BIN = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
ART = os.path.join(os.path.dirname(BIN), "portal-artefacts")
LIMIT_S = 90
T0 = time.time()
passed = failed = 0

# The rig: demo-lib.sh's functions, a step per line from stdin, `@@end RC` after each.
DRIVER = r'''
set -uo pipefail
TB_WHO=test_portal_flows
. "$TB_SRC/tools/demo-lib.sh"
pf_dump() { # TAG FILE: the file's lines as "@@TAG line"
	local l
	[ -n "${2:-}" ] && [ -f "$2" ] || return 0
	while IFS= read -r l || [ -n "$l" ]; do printf '@@%s %s\n' "$1" "$l"; done <"$2"
}
pf_start() {
	tb_init "$1" && tb_deploy && tb_start_stack || return 1
	echo "@@dep $TB_DEP"
	echo "@@portal $TB_PORTAL_URL"
	echo "@@serial $TB_SE_SERIAL"
	echo "@@mode $TB_MODE"
}
pf_phone() { # "CMD|REGEX"...: one phone session
	local rc=0
	tb_phone_session "$@" || rc=$?
	pf_dump phone "$TB_PHONE_LOG"
	[ -z "$TB_WHY" ] || echo "@@why $TB_WHY"
	return $rc
}
pf_tap() { # tb_step's arguments: one tap, the phone's and the reader's lines
	local rc=0 n
	tb_step "$@" || rc=$?
	n=$((${#TB_R_FLOW[@]} - 1))
	echo "@@res ${TB_R_RES[n]}"
	echo "@@rrc ${TB_R_RC[n]}"
	pf_dump reader "${TB_R_READER[n]}"
	pf_dump phone "${TB_R_PHONE[n]}"
	return $rc
}
pf_end() {
	tb_stop_all
	echo "@@left $TB_LEFT"
}
while IFS= read -r pf_line; do
	eval "$pf_line"
	echo "@@end $?"
done
'''


def ok(cond, what, why=""):
    global passed, failed
    if cond:
        passed += 1
        print("ok - " + what, flush=True)
    else:
        failed += 1
        print("not ok - " + what + (": " + why if why else ""), flush=True)
    return cond


class Rig:
    """The bash process that holds the rig; do() sends one step and returns its
    `@@` lines as (tag, text) pairs and its exit status."""

    def __init__(self):
        env = dict(os.environ, TB_SRC=SRC, TB_LINK="direct",
                   TB_SERVER_ARGS="--portal 127.0.0.1:0")
        self.p = subprocess.Popen(["bash", "-c", DRIVER], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, env=env, cwd=SRC)
        self.q = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.p.stdout:
            self.q.put(line.rstrip("\n"))
        self.q.put(None)

    def do(self, *words, timeout=60):
        self.p.stdin.write(" ".join(shlex.quote(w) for w in words) + "\n")
        self.p.stdin.flush()
        out, end = [], time.time() + timeout
        while True:
            try:
                line = self.q.get(timeout=max(0.1, end - time.time()))
            except queue.Empty:
                raise TimeoutError("the rig did not finish %s in %d s" % (words[0], timeout))
            if line is None:
                raise EOFError("the rig ended during " + words[0])
            m = re.match(r"@@(\w+) ?(.*)$", line)
            if not m:
                continue
            if m.group(1) == "end":
                return int(m.group(2)), out
            out.append((m.group(1), m.group(2)))

    def close(self):
        """Stdin closed: the rig's EXIT trap stops what it started; SIGTERM after 30 s
        (its TERM trap does the same), SIGKILL after 10 s more."""
        try:
            self.p.stdin.close()
        except OSError:
            pass
        for sig, secs in ((None, 30), (15, 10), (9, 5)):
            if sig is not None:
                self.p.send_signal(sig)
            try:
                self.p.wait(timeout=secs)
                return
            except subprocess.TimeoutExpired:
                continue


def lines(out, tag):
    return [t for g, t in out if g == tag]


def first(out, tag, pattern):
    for t in lines(out, tag):
        m = re.search(pattern, t)
        if m:
            return m
    return None


def admin(*args):
    r = subprocess.run([BIN, "admin"] + list(args), capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise RuntimeError("tapbridge admin %s: %s%s" % (args[0], r.stdout, r.stderr))
    return r.stdout


def books(dep, serial):
    """(history lines, the ledger's purse) for the se."""
    hist = admin("history", "--dir", dep, "--se", serial).strip().splitlines()
    purse = None
    for l in admin("ledger", "--dir", dep, "--se", serial).splitlines():
        f = l.split()
        if f and f[0] == "purse":
            purse = int(f[2])
    return hist, purse


def rows(html):
    """The history table's rows as text."""
    return [text_of(r).strip() for r in re.findall(r"<tr>(.*?)</tr>", html, re.S)]


RE_MENU = "phone: .*(menu|service)"
RE_ARMED = "phone: .*armed"
AVAILABLE = "use 1|service available: tap the reader"
# The phone's next contact: any command; the NOTICE comes right after HELLO/MENU, maybe
# before `wait-notice` is read (it claims it then), so the step after it marks the end.
CONTACT = ("menu|" + RE_MENU, "wait-notice wallet 20", "menu|" + RE_MENU)


def wallet_state(html):
    m = re.search(r'id="state">([^<]*)<', html)
    return m.group(1) if m else None


def run(rig, b, dep, serial, base):
    # ---------------------------------------------------------------- (a) ---
    rc, out = rig.do("pf_phone", "menu|" + RE_MENU, "topup 1|topped up [0-9]+, balance [0-9]+")
    ok(rc == 0 and first(out, "phone", r"notice topped up 1000, balance 1000"),
       "a: the phone tops up 1000", "; ".join(lines(out, "why") or lines(out, "phone")[-2:]))
    rc, out = rig.do("pf_tap", "1", "e-money", "7", "paid 300 at reader 7", AVAILABLE, "--",
                     "--app", "pay", "--amount", "300", "--flow-order", "online-first")
    ok(rc == 0 and "reader: paid 300" in lines(out, "reader") and
       first(out, "phone", r"notice paid 300 at reader 7, balance 700"),
       "a: flow 1 pays 300 at reader 7 (reader: paid 300; phone: balance 700)",
       " ".join(lines(out, "res")))
    rc, out = rig.do("pf_phone", "balance|phone: balance", "portal|phone: (portal link|error)")
    m_bal = first(out, "phone", r"^phone: balance (\d+)$")
    m_link = first(out, "phone", r"^phone: portal link (https://\S+)$")
    se_bal = int(m_bal.group(1)) if m_bal else None
    ok(rc == 0 and se_bal == 700 and m_link is not None and m_link.group(1).startswith(base + "/login?t="),
       "a: the phone reads balance 700 from the se and gets a portal link for this portal",
       "; ".join(lines(out, "phone")))
    if m_link is None:
        return
    b.go(m_link.group(1))
    d = b.keep("flows-a-home")
    ok(b.url() == base + "/" and 'id="balance">%d<' % se_bal in d and serial in d,
       "a: the phone's link signs in; the page's balance is the se's (%d)" % se_bal,
       text_of(d)[:200])
    hist, purse = books(dep, serial)
    ok(purse == se_bal, "a: ... and the ledger's purse (%s)" % purse)
    b.click('a[href="/history"]')
    d = b.keep("flows-a-history")
    rs = rows(d)
    pay = [r for r in rs if "Payment" in r and "reader 7" in r and "\u2212300" in r]
    top = [r for r in rs if "Top-up" in r and "+1000" in r]
    ok(len(pay) == 1 and len(top) == 1 and rs.index(pay[0]) < rs.index(top[0]),
       "a: history page: the payment of 300 at reader 7 (newest first), the top-up of 1000",
       " | ".join(rs[:4]))

    # ---------------------------------------------------------------- (b) ---
    b.click('a[href="/wallet"]')
    b.click("#lock")
    d = b.keep("flows-b-lock-pending")
    ok(wallet_state(d) == "Lock pending" and 'id="pending"' in d and "next contact" in d,
       "b: lock on the page: 'Lock pending' shown", text_of(d)[:200])
    rc, out = rig.do("pf_phone", *CONTACT)
    ok(rc == 0 and first(out, "phone", r"^phone: notice wallet locked \(as asked on the portal\)$") and
       first(out, "phone", r"^phone: se says locked$"),
       "b: the phone's next contact: the se says locked, NOTICE 'wallet locked (as asked on the portal)'",
       "; ".join(lines(out, "why") + lines(out, "phone")[-3:]))
    b.go(base + "/wallet")
    d = b.keep("flows-b-locked")
    ok(wallet_state(d) == "Locked" and 'id="pending"' not in d and "pending" not in text_of(d),
       "b: the page says Locked, no longer pending", text_of(d)[:200])
    hist0, purse0 = books(dep, serial)
    rc, out = rig.do("pf_tap", "2", "e-money", "7", "", "--", "--app", "pay", "--amount", "190",
                     "--flow-order", "offline-first")
    r = lines(out, "reader")
    hist1, purse1 = books(dep, serial)
    ok(rc != 0 and "reader: refused: wallet locked" in r and not any("paid" in l for l in r),
       "b: a reader tap is refused by the se: 'wallet locked'", "; ".join(r[-3:]))
    ok(hist1 == hist0 and purse1 == purse0 == 700,
       "b: ... nothing booked (history and purse unchanged)", "purse %s -> %s" % (purse0, purse1))

    # ---------------------------------------------------------------- (c) ---
    m = re.search(r"unlock code for %s: (\d{8})" % serial, admin("portal-code", "--dir", dep, "--se", serial))
    if not ok(m is not None, "c: the operator prints an unlock code"):
        return
    b.type("#code", m.group(1))
    b.click("#unlock")
    d = b.keep("flows-c-unlock-pending")
    ok(wallet_state(d) == "Unlock pending" and 'id="pending"' in d,
       "c: unlock with the code: 'Unlock pending' shown", text_of(d)[:200])
    rc, out = rig.do("pf_phone", *CONTACT)
    ok(rc == 0 and first(out, "phone", r"^phone: notice wallet unlocked \(as asked on the portal\)$") and
       first(out, "phone", r"^phone: se says unlocked$"),
       "c: the phone's next contact: the se says unlocked, NOTICE 'wallet unlocked (as asked on the portal)'",
       "; ".join(lines(out, "why") + lines(out, "phone")[-3:]))
    b.go(base + "/wallet")
    d = b.keep("flows-c-active")
    ok(wallet_state(d) == "Active" and 'id="pending"' not in d and 'id="lock"' in d,
       "c: the page says Active, nothing pending, the lock form is back", text_of(d)[:200])
    rc, out = rig.do("pf_tap", "1", "e-money", "7", "paid 120 at reader 7", AVAILABLE, "--",
                     "--app", "pay", "--amount", "120", "--flow-order", "online-first")
    ok(rc == 0 and "reader: paid 120" in lines(out, "reader") and
       first(out, "phone", r"notice paid 120 at reader 7, balance 580"),
       "c: a reader tap pays again (120 at reader 7, balance 580)", " ".join(lines(out, "res")))
    b.go(base + "/")
    d = b.keep("flows-c-home")
    hist, purse = books(dep, serial)
    ok('id="balance">580<' in d and purse == 580, "c: the page's balance is 580, as the ledger's")

    # ---------------------------------------------------------------- (d) ---
    # Readers 7 and 8 of the rig are class 1 (tb_deploy): class 1 may see age-over-20.
    admin("pauth-set", "--dir", dep, "--se", serial, "--attr", "name=Hanako",
          "--attr", "age-over-20=yes", "--class", "1", "--visible", "age-over-20")
    rc, out = rig.do("pf_phone", "select 3|phone: (notice|error)")
    ok(rc == 0 and first(out, "phone", r"^phone: notice flag set until"),
       "d: the phone selects personal-auth (key registered, flag set)",
       "; ".join(lines(out, "why") + lines(out, "phone")[-3:]))
    rc, out = rig.do("pf_tap", "4", "personal-auth", "7", "reader 7: personal-auth recorded",
                     "permit 3|permit stored", "arm 3|" + RE_ARMED, "--",
                     "--app", "id", "--flow-order", "offline-first")
    r = lines(out, "reader")
    ok(rc == 0 and "reader: identity confirmed: age-over-20=yes" in r and
       not any("Hanako" in l for l in r + lines(out, "phone")),
       "d: online id check (flow 4): the reader sees age-over-20=yes only",
       " ".join(lines(out, "res")) + "; " + "; ".join(r[-2:]))
    b.go(base + "/personal")
    d = b.keep("flows-d-personal")
    t = text_of(d)
    ok("age-over-20" in t and "Hanako" in t and 'id="delete"' in d and
       re.search(r"<td>Identifier</td><td>[0-9A-F]{32}</td>", d),
       "d: the personal data page shows the record, its identifier the key the se registered",
       t[:200])
    b.click("#confirm", loads=False)
    b.click("#delete")
    d = b.keep("flows-d-deleted")
    ok("Deleted" in d and "deleted from the server" in d, "d: deleted on the page", text_of(d)[:200])
    b.click('a[href="/history"]')
    d = b.keep("flows-d-history")
    rs = rows(d)
    ok(len(rs) > 1 and "Personal data deleted" in rs[1] and
       any("Identity checked" in x and "reader 7" in x for x in rs),
       "d: the history shows the deletion (newest) and the identity check at reader 7",
       " | ".join(rs[:4]))
    b.go(base + "/personal")
    d = b.keep("flows-d-personal-after")
    ok('id="none"' in d and "Hanako" not in d and "age-over-20" not in d,
       "d: the personal data page holds nothing any more")
    rc, out = rig.do("pf_tap", "4", "personal-auth", "7", "reader 7: personal-auth",
                     "permit 3|permit stored", "arm 3|" + RE_ARMED, "--",
                     "--app", "id", "--flow-order", "offline-first")
    r = lines(out, "reader")
    ok("reader: refused: personal data deleted" in r and
       not any("identity confirmed" in l for l in r) and
       first(out, "phone", r"notice reader 7: personal-auth refused \(personal data deleted\)"),
       "d: the next online id check is refused: 'personal data deleted'",
       "; ".join(r[-2:] + lines(out, "res")))


def main():
    chromium = find_chromium()
    if chromium is None:
        print("not ok - chromium is not installed (apt-get install chromium; tools/deps.sh)")
        return 1
    os.makedirs(ART, exist_ok=True)
    for f in glob.glob(os.path.join(ART, "flows-*")):
        os.remove(f)
    rig = Rig()
    b = None
    log = open(os.path.join(ART, "flows-chromium.log"), "w")
    try:
        rc, out = rig.do("pf_start", BIN, timeout=60)
        info = dict(out)
        base, dep, serial = info.get("portal", ""), info.get("dep"), info.get("serial")
        if not ok(rc == 0 and base.startswith("https://"),
                  "the rig starts: sam, server with --portal, gateway, se (%s link)" % info.get("mode")):
            return 1
        try:
            b = Browser(chromium, os.path.join(os.path.dirname(dep), "chromium-profile"), log,
                        art=ART)
            run(rig, b, dep, serial, base)
        except Exception as e:  # a step that could not go on: the rest is not run
            ok(False, "the steps ran to the end", "%s: %s" % (type(e).__name__, e))
        if b is not None:
            b.close()
            b = None
        rc, out = rig.do("pf_end")
        left = dict(out).get("left", "?")
        ok(rc == 0 and left == "", "everything the rig started is stopped", left)
    finally:
        if b is not None:
            b.close()
        rig.close()
        log.close()
    dt = time.time() - T0
    ok(dt < LIMIT_S, "within %d s (%.1f s)" % (LIMIT_S, dt))
    print("# %d passed, %d failed (%.1f s); artefacts in %s/flows-*" % (passed, failed, dt, ART))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
