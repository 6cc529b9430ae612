#!/usr/bin/python3
"""The web page of `hidream serve` in headless Chromium (Debian chromium + chromium-driver,
driven by Debian python3-selenium): load the page, type a prompt, generate, see progress, the
preview and the result in the history; upload a reference picture and draw its layout box; start
a long job and cancel it. Screenshots go to $HIDREAM_BUILD/serve-screenshots/ as artefacts.

usage (ctest runs it): serve_browser.py   with HIDREAM_BIN and HIDREAM_BUILD set"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

import serve_harness as h
from serve_harness import BIN, BUILD, check

SHOTS = os.path.join(BUILD, "serve-screenshots")


def browser():
    opt = webdriver.ChromeOptions()
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1200,1000",
              "--disable-dev-shm-usage"):
        opt.add_argument(a)
    opt.binary_location = "/usr/bin/chromium"
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opt)


def set_value(d, id_, value):
    el = d.find_element(By.ID, id_)
    el.clear()
    el.send_keys(str(value))


def shot(d, name):
    d.execute_script("window.scrollTo(0, 0)")
    d.save_screenshot(os.path.join(SHOTS, name))


def history(d):
    return d.find_elements(By.CSS_SELECTOR, "#hist .item")


def main():
    os.makedirs(SHOTS, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="hidream-browser-")
    proc, url, _ = h.start_server(tmp, h.make_model(tmp), "server", "--max-steps", "1000")
    d = browser()
    wait = WebDriverWait(d, 120)
    try:
        d.get(url)
        check(d.title == "hidream.c", "the page loads")
        wait.until(lambda d: d.find_element(By.ID, "model").text == "vis")
        check(True, "the page shows the loaded model")

        set_value(d, "prompt", "a red circle on a blue background")
        set_value(d, "seed", 7)
        set_value(d, "steps", 12)
        set_value(d, "w", 64)
        set_value(d, "h", 64)
        d.find_element(By.ID, "go").click()
        wait.until(lambda d: len(history(d)) == 1)
        status = d.find_element(By.ID, "status").text
        fill = d.find_element(By.ID, "fill").get_attribute("style")
        preview = d.find_element(By.ID, "preview").get_attribute("src") or ""
        check(status == "done" and "100" in fill, f"progress reaches done ({status}, {fill})")
        check(preview.startswith("data:image/jpeg;base64,"), "a live preview was shown")
        item = history(d)[0]
        check("seed 7, 12 steps" in item.text, f"the history shows the recipe ({item.text!r})")
        img = item.find_element(By.TAG_NAME, "img")
        wait.until(lambda d: d.execute_script("return arguments[0].naturalWidth", img) == 64)
        check(True, "the picture is shown at 64x64")
        shot(d, "1-generated.png")

        # a reference picture and a layout box drawn on the canvas
        d.find_element(By.ID, "files").send_keys(write_ref(tmp))
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#refs img")) == 1)
        canvas = d.find_element(By.ID, "canvas")
        ActionChains(d).move_to_element_with_offset(canvas, -100, -100).click_and_hold() \
            .move_by_offset(150, 150).release().perform()
        layout = d.find_element(By.ID, "layout").get_attribute("value")
        check(layout.startswith("[[") and layout.count("[") == 2, f"a layout box was drawn ({layout})")
        d.find_element(By.ID, "go").click()
        wait.until(lambda d: len(history(d)) == 2)
        check(d.find_element(By.ID, "msg").text == "", "the edit with a reference was made")
        shot(d, "2-reference.png")

        # regenerate from a picture's recipe: its fields fill the form
        d.find_element(By.ID, "recipe").send_keys(write_ref(tmp))
        wait.until(lambda d: d.find_element(By.ID, "prompt").get_attribute("value") == "ref")
        check(d.find_element(By.ID, "w").get_attribute("value") == "64",
              "a picture's recipe fills the form")

        # a long job, cancelled from the page
        d.find_element(By.ID, "clear").click()
        d.execute_script("document.getElementById('files').value='';")
        d.execute_script("refs=[];document.getElementById('refs').innerHTML='';")
        set_value(d, "steps", 1000)
        set_value(d, "w", 128)
        set_value(d, "h", 128)
        d.find_element(By.ID, "go").click()
        wait.until(lambda d: d.find_element(By.ID, "status").text.startswith("running"))
        shot(d, "3-running.png")
        d.find_element(By.ID, "cancel").click()
        wait.until(lambda d: d.find_element(By.ID, "status").text == "cancelled")
        check("cancelled" in d.find_element(By.ID, "msg").text, "the job was cancelled")
        check(len(history(d)) == 2, "a cancelled job adds no picture")
        shot(d, "4-cancelled.png")
    except Exception as e:  # a timeout or a missing element is a failure with a screenshot
        shot(d, "failure.png")
        check(False, f"browser step failed: {type(e).__name__}: {e}")
    finally:
        d.quit()
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=30)
        check(rc == 0, f"the server stops cleanly on SIGTERM (exit {rc})")
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"screenshots in {SHOTS}")
    return 1 if h.failures else 0


def write_ref(tmp):
    """A 64x64 PNG through the CLI (no Python imaging needed): a generated picture."""
    path = os.path.join(tmp, "ref.png")
    subprocess.run([BIN, "generate", "-m", os.path.join(tmp, "vis"), "-p", "ref", "-o", path],
                   check=True, stderr=subprocess.DEVNULL)
    return path


if __name__ == "__main__":
    sys.exit(main())
