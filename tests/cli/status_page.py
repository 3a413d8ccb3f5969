#!/usr/bin/env python3
"""status_page.py - the status page in a real browser.

    status_page.py CHIME_BIN OUT_DIR

Runs the chime command on a few jobs on the real clock (one that succeeds,
one that fails, one slower than its interval, so that its ticks are
skipped, one whose name has every character a name may hold), serving
HTTP on a free loopback port; loads its status page in headless Chromium,
driven through the DevTools protocol on a pipe (the standard library
only); waits until the page's JavaScript has drawn what /api says; asserts
what the DOM shows: each job, its schedule, its next run counting down,
its last outcome, failures marked, and the plot's marks (runs by outcome,
lateness, skipped ticks); and writes screenshots, at a desktop's width and
a phone's, to OUT_DIR/status-page.png and OUT_DIR/status-page-phone.png,
whose paths it prints.  Exit 0 passed, 1 failed, 77 skipped (no Chromium).
"""
import base64
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--remote-debugging-pipe", "--hide-scrollbars", "--force-color-profile=srgb"]

CONFIG = """\
[chime]
http = 127.0.0.1:0
[job heartbeat]
every = 1s
start_now = true
command = sh -c 'sleep 0.2'
[job backup]
every = 1s
start_now = true
command = sh -c 'echo "disk full: </b>&" >&2; exit 3'
[job slow]
every = 500ms
start_now = true
command = sleep 1.3
[job a.b-c@host_1]
every = 1h
command = true
"""
JOBS = ["heartbeat", "backup", "slow", "a.b-c@host_1"]


class Browser:
    """Chromium and its DevTools protocol, over the pipe it reads (fd 3)
    and writes (fd 4), messages ending in a NUL."""

    def __init__(self, binary, profile):
        to_chrome_r, self.to_chrome = os.pipe()
        self.from_chrome, from_chrome_w = os.pipe()

        def fds():  # Python's descriptors are close-on-exec; dup2's copies are not
            os.dup2(to_chrome_r, 3)
            os.dup2(from_chrome_w, 4)

        self.proc = subprocess.Popen([binary, *CHROMIUM_FLAGS, "--user-data-dir=" + profile, "about:blank"],
                                     close_fds=False, preexec_fn=fds,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.buf = b""
        self.next_id = 0
        self.session = None

    def call(self, method, params=None, timeout=30):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if self.session and not method.startswith("Target."):
            msg["sessionId"] = self.session
        os.write(self.to_chrome, json.dumps(msg).encode() + b"\0")
        end = time.monotonic() + timeout
        while True:
            while b"\0" in self.buf:
                raw, self.buf = self.buf.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("id") == self.next_id:
                    if "error" in reply:
                        raise RuntimeError(f"{method}: {reply['error']}")
                    return reply["result"]
            left = end - time.monotonic()
            if left <= 0 or not select.select([self.from_chrome], [], [], left)[0]:
                raise TimeoutError(method)
            chunk = os.read(self.from_chrome, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed its pipe")
            self.buf += chunk

    def open(self, url, width, height, mobile=False):
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.call("Page.enable")
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 2 if mobile else 1, "mobile": mobile})
        self.call("Page.navigate", {"url": url})

    def eval(self, expr):
        r = self.call("Runtime.evaluate", {"expression": expr, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expr[:60]}...: {r['exceptionDetails']}")
        return r["result"].get("value")

    def screenshot(self, path):
        size = self.eval("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
        shot = self.call("Page.captureScreenshot",
                         {"format": "png", "captureBeyondViewport": True,
                          "clip": {"x": 0, "y": 0, "width": size[0], "height": size[1], "scale": 1}})
        with open(path, "wb") as f:
            f.write(base64.b64decode(shot["data"]))

    def close(self):
        try:
            self.call("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# What the page shows, read from its DOM.
READ_DOM = """JSON.stringify([...document.querySelectorAll('section.job')].map(c => ({
  name: c.dataset.job, last: c.dataset.last, failing: c.classList.contains('failing'),
  title: c.querySelector('h2').textContent,
  badge: (c.querySelector('.badge.last') || {}).textContent || null,
  schedule: c.querySelector('.schedule b').textContent,
  next: c.querySelector('.next b').textContent,
  runs: [...c.querySelectorAll('svg .run')].map(r => r.dataset.outcome),
  late: c.querySelectorAll('svg .late').length,
  skips: [...c.querySelectorAll('svg .skip')].map(s => s.dataset.reason),
  ticks: c.querySelectorAll('svg text').length,
})))"""


def fail(why, log=""):
    print("FAIL:", why)
    if log:
        print("chime's log (its end):\n" + log[-3000:])
    sys.exit(1)


def main():
    chime, out_dir = sys.argv[1], sys.argv[2]
    browser_bin = shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser_bin:
        print("skipped: no chromium (Debian: apt-get install chromium)")
        return 77
    os.makedirs(out_dir, exist_ok=True)
    work = tempfile.mkdtemp(prefix="chime-page-")
    conf = os.path.join(work, "c.conf")
    with open(conf, "w") as f:
        f.write(CONFIG)
    log_path = os.path.join(work, "log")
    log_file = open(log_path, "w")
    daemon = subprocess.Popen([chime, "run", conf, "--db", os.path.join(work, "h.db")], stderr=log_file,
                              stdout=subprocess.DEVNULL)
    read_log = lambda: open(log_path).read()
    browser = None
    try:
        end = time.monotonic() + 30
        while not (m := re.search(r"event=http url=(\S+)", read_log())):
            if time.monotonic() > end or daemon.poll() is not None:
                fail("chime did not say where it serves HTTP", read_log())
            time.sleep(0.1)
        url = m.group(1)
        time.sleep(4.5)  # runs, failures and skipped ticks on the real clock
        browser = Browser(browser_bin, os.path.join(work, "profile"))
        browser.open(url, 1100, 900)
        end = time.monotonic() + 40
        while True:  # until the page has drawn every job, with runs and skipped ticks
            jobs = json.loads(browser.eval(READ_DOM) or "[]")
            by = {j["name"]: j for j in jobs}
            if (len(jobs) == len(JOBS) and by.get("heartbeat", {}).get("runs") and
                    "failed" in by.get("backup", {}).get("runs", []) and by.get("slow", {}).get("skips")):
                break
            if time.monotonic() > end:
                fail(f"the page did not show every job, its runs and skipped ticks: {json.dumps(jobs, indent=1)}",
                     read_log())
            time.sleep(0.25)
        problems = []

        def check(ok, what):
            if not ok:
                problems.append(what)

        check([j["name"] for j in jobs] == JOBS, f"the jobs, in the config's order: {[j['name'] for j in jobs]}")
        hb, bk, sl, odd = (by[n] for n in JOBS)
        check(hb["last"] == "ok" and hb["badge"] == "ok" and not hb["failing"], f"heartbeat's last outcome: {hb}")
        check(set(hb["runs"]) <= {"ok", "running"} and hb["runs"].count("ok") >= 3, f"heartbeat's runs: {hb['runs']}")
        check(hb["schedule"] == "every 1s", f"heartbeat's schedule: {hb['schedule']}")
        check(re.fullmatch(r"in \d\.\ds|due", hb["next"]) is not None, f"heartbeat's next run: {hb['next']}")
        check(bk["last"] == "failed" and bk["badge"] == "failed" and bk["failing"], f"backup's failure marked: {bk}")
        check(bk["runs"].count("failed") >= 3, f"backup's failed runs on the plot: {bk['runs']}")
        check(sl["skips"] and set(sl["skips"]) == {"overlap"}, f"slow's skipped ticks: {sl['skips']}")
        check("ok" in sl["runs"] or "running" in sl["runs"], f"slow's runs: {sl['runs']}")
        check(odd["title"] == "a.b-c@host_1" and odd["last"] == "none" and odd["runs"] == [],
              f"a job yet to run: {odd}")
        check(re.fullmatch(r"in (59m \d+s|1h 0m)", odd["next"]) is not None, f"its next run, an hour off: {odd['next']}")
        check(all(j["ticks"] >= 2 for j in (hb, bk, sl)), "time axes with their labels")
        # the countdown moves without a refresh
        before = browser.eval("document.querySelector('section.job[data-job=\"a.b-c@host_1\"] .next b').textContent")
        time.sleep(1.2)
        after = browser.eval("document.querySelector('section.job[data-job=\"a.b-c@host_1\"] .next b').textContent")
        check(before != after, f"the countdown did not move: {before} then {after}")
        # nothing from elsewhere was loaded, and the page made no error
        resources = browser.eval("JSON.stringify(performance.getEntriesByType('resource').map(r => r.name))")
        check(all(r.startswith(url) for r in json.loads(resources)), f"resources from elsewhere: {resources}")
        shot = os.path.join(out_dir, "status-page.png")
        browser.screenshot(shot)
        browser.call("Target.closeTarget", {"targetId": browser.call("Target.getTargets")["targetInfos"][0]["targetId"]})
        browser.session = None
        browser.open(url, 390, 800, mobile=True)
        end = time.monotonic() + 20
        while browser.eval("document.querySelectorAll('svg .run').length") < 3:
            if time.monotonic() > end:
                fail("the page at a phone's width drew no runs")
            time.sleep(0.25)
        width = browser.eval("document.documentElement.scrollWidth")
        check(width <= 390, f"at a phone's width (390 px) the page is {width} px wide")
        phone = os.path.join(out_dir, "status-page-phone.png")
        browser.screenshot(phone)
        print("screenshot:", shot)
        print("screenshot:", phone)
        print("the page showed:", json.dumps(jobs))
        if problems:
            fail("; ".join(problems), read_log())
        print("status page: ok")
        return 0
    finally:
        if browser:
            browser.close()
        daemon.send_signal(signal.SIGINT)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
