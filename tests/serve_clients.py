#!/usr/bin/env python3
"""`hidream serve` driven by real third-party clients from PyPI (test-only, installed into
build-venv/ by scripts/deps.sh): the official `openai` Python client lists the model, generates
(b64_json PNG at the exact size, the same seed gives the same picture, another seed another one),
edits with one and with two pictures, and meets a wrong API key with openai.AuthenticationError;
the AUTOMATIC1111 client `webuiapi` makes a txt2img call whose JSON answer it decodes to a PIL
image of the size asked for.

usage (ctest runs it with build-venv/bin/python): serve_clients.py   with HIDREAM_BIN and
HIDREAM_BUILD set"""
import base64
import io
import os
import shutil
import signal
import subprocess
import sys
import tempfile

import openai
import webuiapi
from PIL import Image

import serve_harness as h
from serve_harness import check, make_model, start_server

KEY = "sk-hidream-test-key"


def stop(proc, name):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = "killed after 30 s"
    else:
        rc = f"had already exited with {proc.returncode}"
    check(rc == 0, f"the {name} server stops cleanly on SIGTERM (exit {rc})")


def png_of(b64):
    raw = base64.b64decode(b64)
    img = Image.open(io.BytesIO(raw))
    img.load()
    return raw, img


def generate(client, seed, prompt="a red circle on a blue background"):
    r = client.images.generate(model="vis", prompt=prompt, size="64x64", n=1,
                               response_format="b64_json", extra_body={"seed": seed, "steps": 4})
    return r.data[0].b64_json


def openai_checks(url, tmp):
    client = openai.OpenAI(base_url=url + "v1", api_key=KEY, max_retries=0, timeout=300)
    ids = [m.id for m in client.models.list()]
    check(ids == ["vis"], f"openai: models.list() lists the model ({ids})")

    b64 = generate(client, 7)
    raw, img = png_of(b64)
    check(raw[:8] == b"\x89PNG\r\n\x1a\n" and img.format == "PNG",
          "openai: images.generate(response_format='b64_json') returns a PNG")
    check(img.size == (64, 64) and img.mode == "RGB", f"openai: it is 64x64 RGB ({img.size}, {img.mode})")
    check(generate(client, 7) == b64, "openai: the same seed gives the same picture")
    check(generate(client, 8) != b64, "openai: another seed gives another picture")

    ref1, ref2 = os.path.join(tmp, "ref1.png"), os.path.join(tmp, "ref2.png")
    img.save(ref1)
    png_of(generate(client, 9, "a green square"))[1].save(ref2)
    with open(ref1, "rb") as f:
        r = client.images.edit(model="vis", image=f, prompt="the same picture in red", size="64x64",
                               response_format="b64_json", extra_body={"seed": 3, "steps": 4})
    _, e1 = png_of(r.data[0].b64_json)
    check(e1.size == (64, 64), f"openai: images.edit with one picture returns an image ({e1.size})")
    with open(ref1, "rb") as f1, open(ref2, "rb") as f2:
        r = client.images.edit(model="vis", image=[f1, f2], prompt="the circle and the square together",
                               size="64x64", response_format="b64_json",
                               extra_body={"seed": 3, "steps": 4})
    _, e2 = png_of(r.data[0].b64_json)
    check(e2.size == (64, 64), f"openai: images.edit with two pictures returns an image ({e2.size})")
    check(e2.tobytes() != e1.tobytes(), "openai: the second picture changes the edit")

    bad = openai.OpenAI(base_url=url + "v1", api_key="sk-wrong", max_retries=0, timeout=60)
    try:
        bad.models.list()
        check(False, "openai: a wrong API key is refused (it was accepted)")
    except openai.AuthenticationError as e:
        check(e.status_code == 401, "openai: a wrong API key raises openai.AuthenticationError (401)")
    try:
        bad.images.generate(prompt="x", size="64x64", response_format="b64_json")
        check(False, "openai: generating with a wrong API key is refused (it was accepted)")
    except openai.AuthenticationError:
        check(True, "openai: generating with a wrong API key raises openai.AuthenticationError")


def a1111_checks(port):
    api = webuiapi.WebUIApi(host="127.0.0.1", port=port)
    r = api.txt2img(prompt="a red circle on a blue background", width=64, height=64, steps=4, seed=5)
    img = r.image
    check(isinstance(img, Image.Image) and img.size == (64, 64),
          f"a1111: webuiapi txt2img decodes to a 64x64 PIL image ({getattr(img, 'size', img)})")
    check(isinstance(r.info, dict) and r.info.get("seed") == 5 and r.info.get("width") == 64,
          f"a1111: the info names the seed and size ({r.info!r:.120})")
    again = api.txt2img(prompt="a red circle on a blue background", width=64, height=64, steps=4, seed=5)
    check(again.image.tobytes() == img.tobytes(), "a1111: the same seed gives the same picture")


def main():
    tmp = tempfile.mkdtemp(prefix="hidream-clients-")
    model = make_model(tmp)
    keyed, url, _ = start_server(tmp, model, "keyed", "--api-key", KEY)
    try:
        openai_checks(url, tmp)
    except Exception as e:  # a client error is a failure, and the server still stops
        check(False, f"openai step failed: {type(e).__name__}: {e}")
    finally:
        stop(keyed, "keyed")
    # webuiapi speaks HTTP basic auth only, so the A1111 client meets a server without a key
    plain, _, port = start_server(tmp, model, "plain")
    try:
        a1111_checks(port)
    except Exception as e:
        check(False, f"a1111 step failed: {type(e).__name__}: {e}")
    finally:
        stop(plain, "plain")
    if h.failures:
        print(f"server logs in {tmp}")
        return 1
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
