"""What the Python tests of `hidream serve` share (serve_browser.py, serve_clients.py): ok/FAIL
lines with a failure count, the tiny 64x64 model they serve, and a server started on a free port
(its URL read from the "listening on" line of its log)."""
import os
import re
import subprocess
import sys
import time

BIN = os.environ["HIDREAM_BIN"]
BUILD = os.environ["HIDREAM_BUILD"]
failures = 0


def check(cond, what):
    global failures
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    failures += 0 if cond else 1


def make_model(tmp):
    model = os.path.join(tmp, "vis")
    subprocess.run([os.path.join(BUILD, "hd_make_model"), "--preset", "tiny", "--seed", "11",
                    "--out", model, "--patch", "32", "--native", "64x64", "--noise-scale", "1",
                    "--hidream", '{"scheduler":"unipc","steps":4,"guidance":1,"shift":1}'],
                   check=True, stdout=subprocess.DEVNULL)
    return model


def start_server(tmp, model, name, *extra):
    """Returns (process, "http://127.0.0.1:PORT/", PORT); exits the test if it never listens."""
    log = open(os.path.join(tmp, name + ".log"), "w+")
    proc = subprocess.Popen([BIN, "serve", "-m", model, "--port", "0", *extra], stderr=log)
    for _ in range(600):
        time.sleep(0.1)
        log.seek(0)
        m = re.search(r"listening on (http://127\.0\.0\.1:(\d+)/)", log.read())
        if m:
            return proc, m.group(1), int(m.group(2))
        if proc.poll() is not None:
            break
    proc.kill()
    log.seek(0)
    sys.exit("the server did not start:\n" + log.read())
