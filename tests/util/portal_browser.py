#!/usr/bin/env python3
"""portal_browser.py - headless Chromium driven over --remote-debugging-pipe, for the
portal's browser tests (tests/test_portal_browser.py, tests/test_portal_flows.py) and the
portal screenshots of `make demo` (tools/demo.sh runs it as a script:
`portal_browser.py shoot LINK OUTDIR`).

What stays true: clicks and typing are real input events on the page's own forms (the
pages run no script); every wait has a timeout; the browser is closed (and killed when it
does not go) by close(); artefacts go only to the directory given.
"""
import base64
import fcntl
import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time


def find_chromium():
    """The Chromium executable: $CHROMIUM, else chromium / chromium-browser /
    google-chrome on PATH; None when there is none."""
    env = os.environ.get("CHROMIUM")
    if env and os.access(env, os.X_OK):
        return env
    for name in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(name)
        if p:
            return p
    return None


class Browser:
    """Chromium over --remote-debugging-pipe: fd 3 carries commands in, fd 4 answers
    and events out, each a JSON text ended by a NUL. The page is a phone screen of
    width x height CSS pixels (device scale `scale`); keep() writes into `art`."""

    def __init__(self, exe, profile, log, art=None, width=360, height=740, scale=1):
        self.art, self.width, self.height, self.scale = art, width, height, scale
        r_in, w_in = os.pipe()
        r_out, w_out = os.pipe()
        # out of the way of 3 and 4 before the child moves them there
        hi_r = fcntl.fcntl(r_in, fcntl.F_DUPFD, 10)
        hi_w = fcntl.fcntl(w_out, fcntl.F_DUPFD, 10)
        os.close(r_in)
        os.close(w_out)

        def child():
            os.dup2(hi_r, 3)
            os.dup2(hi_w, 4)

        self.p = subprocess.Popen(
            [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run",
             "--disable-extensions", "--hide-scrollbars", "--user-data-dir=" + profile,
             "--window-size=%d,%d" % (width, height),
             "--ignore-certificate-errors", "--remote-debugging-pipe", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, close_fds=False, preexec_fn=child)
        os.close(hi_r)
        os.close(hi_w)
        self.w, self.r, self.buf, self.n, self.events = w_in, r_out, b"", 0, []
        try:
            target = self.cmd("Target.createTarget", {"url": "about:blank"})["targetId"]
            self.s = self.cmd("Target.attachToTarget", {"targetId": target,
                                                        "flatten": True})["sessionId"]
            self.cmd("Page.enable", session=True)
            self.cmd("Emulation.setDeviceMetricsOverride",
                     {"width": width, "height": height, "deviceScaleFactor": scale,
                      "mobile": True}, session=True)
        except Exception:
            self.close()
            raise

    def _recv(self, timeout=20):
        end = time.time() + timeout
        while b"\0" not in self.buf:
            left = end - time.time()
            if left <= 0 or not select.select([self.r], [], [], left)[0]:
                raise TimeoutError("chromium did not answer")
            data = os.read(self.r, 1 << 20)
            if not data:
                raise EOFError("chromium closed the pipe")
            self.buf += data
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def cmd(self, method, params=None, session=False):
        self.n += 1
        m = {"id": self.n, "method": method, "params": params or {}}
        if session:
            m["sessionId"] = self.s
        data = json.dumps(m).encode() + b"\0"
        while data:
            data = data[os.write(self.w, data):]
        while True:
            r = self._recv()
            if r.get("id") == self.n:
                if "error" in r:
                    raise RuntimeError("%s: %s" % (method, r["error"]))
                return r.get("result", {})
            self.events.append(r)

    def wait_load(self):
        while True:
            for i, e in enumerate(self.events):
                if e.get("method") == "Page.loadEventFired":
                    del self.events[i]
                    return
            self.events.append(self._recv())

    def go(self, url):
        self.events = []
        self.cmd("Page.navigate", {"url": url}, session=True)
        self.wait_load()

    def url(self):
        h = self.cmd("Page.getNavigationHistory", session=True)
        return h["entries"][h["currentIndex"]]["url"]

    def dom(self):
        root = self.cmd("DOM.getDocument", {"depth": -1}, session=True)["root"]["nodeId"]
        return self.cmd("DOM.getOuterHTML", {"nodeId": root}, session=True)["outerHTML"]

    def node(self, selector):
        root = self.cmd("DOM.getDocument", session=True)["root"]["nodeId"]
        n = self.cmd("DOM.querySelector", {"nodeId": root, "selector": selector}, session=True)
        if not n.get("nodeId"):
            raise LookupError("no element " + selector)
        return n["nodeId"]

    def click(self, selector, loads=True):
        n = self.node(selector)
        self.cmd("DOM.scrollIntoViewIfNeeded", {"nodeId": n}, session=True)
        q = self.cmd("DOM.getContentQuads", {"nodeId": n}, session=True)["quads"][0]
        x, y = sum(q[0::2]) / 4, sum(q[1::2]) / 4
        self.events = []
        for kind in ("mousePressed", "mouseReleased"):
            self.cmd("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": "left",
                                                  "clickCount": 1}, session=True)
        if loads:
            self.wait_load()

    def type(self, selector, text):
        self.cmd("DOM.focus", {"nodeId": self.node(selector)}, session=True)
        self.cmd("Input.insertText", {"text": text}, session=True)

    def cookie(self, base):
        for c in self.cmd("Network.getCookies", {"urls": [base]}, session=True)["cookies"]:
            if c["name"] == "tbp":
                return c
        return None

    def shot(self, path):
        """A full-page screenshot (the screen's width, at least its height, at most
        4000 CSS pixels tall) as PNG at path."""
        size = self.cmd("Page.getLayoutMetrics", session=True)["cssContentSize"]
        data = self.cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": self.width,
                     "height": min(max(size["height"], self.height), 4000), "scale": 1}},
            session=True)["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    def keep(self, name):
        """Saves the DOM and a full-page screenshot in art as NAME.html and NAME.png;
        returns the DOM."""
        html = self.dom()
        os.makedirs(self.art, exist_ok=True)
        with open(os.path.join(self.art, name + ".html"), "w") as f:
            f.write(html)
        self.shot(os.path.join(self.art, name + ".png"))
        return html

    def close(self):
        try:
            self.cmd("Browser.close")
        except Exception:
            pass
        try:
            self.p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        for fd in (self.w, self.r):
            try:
                os.close(fd)
            except OSError:
                pass


def text_of(html):
    """The page's text, as a person reads it (tags dropped, entities kept escaped)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]*>", " ", html))


def shoot(link, outdir, width=390, height=844):
    """The demo's screenshots: signs in with the one-time link, saves the wallet page as
    OUTDIR/portal-home.png and the history page as OUTDIR/portal-history.png. Returns
    (0, paths) or (1, reason)."""
    exe = find_chromium()
    if exe is None:
        return 1, "chromium not found"
    top = tempfile.mkdtemp(prefix="tb-shoot-")
    b = None
    log = open(os.path.join(top, "chromium.log"), "w")
    try:
        b = Browser(exe, os.path.join(top, "profile"), log, width=width, height=height, scale=2)
        b.go(link)
        home = b.dom()
        if 'id="balance"' not in home:
            return 1, "the link did not sign in (%s)" % text_of(home)[:120].strip()
        paths = [os.path.join(outdir, "portal-home.png"), os.path.join(outdir, "portal-history.png")]
        b.shot(paths[0])
        b.click('a[href="/history"]')
        if 'id="history"' not in b.dom():
            return 1, "no history page"
        b.shot(paths[1])
        return 0, paths
    except Exception as e:  # the demo reports it and goes on
        return 1, "%s: %s" % (type(e).__name__, e)
    finally:
        if b is not None:
            b.close()
        log.close()
        shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "shoot":
        print("usage: portal_browser.py shoot LINK OUTDIR", file=sys.stderr)
        sys.exit(2)
    rc, what = shoot(sys.argv[2], sys.argv[3])
    if rc == 0:
        for p in what:
            print(p)
    else:
        print("no portal screenshots: " + what, file=sys.stderr)
    sys.exit(rc)
