#!/usr/bin/python3
"""Byte-for-byte parity of hidream.c's image code with Pillow.

Usage: pillow_parity.py HD_RESIZE_BINARY

Makes random pictures of many sizes and aspect ratios, then compares, through the
`hd_resize` tool, hidream.c's results with Pillow's for: Image.resize (BOX, BILINEAR,
BICUBIC, LANCZOS; up and down, one axis or both), upstream resize_pilimage, crop,
ImageDraw.rectangle(outline, width), the reference borders, the layout image, and
loading PNG (every colour type and bit depth, palettes, transparency, interlacing),
JPEG (RGB, grey, CMYK) and WebP (lossy, lossless with alpha) like
Image.open(...).convert("RGB").

The Python side of resize_pilimage, the layout conversion and drawing is written here
from the spec (06-references.md); Pillow does all the pixel work on that side.
Exits non-zero on any difference. Pillow missing is a failure, not a skip.
"""
import json
import math
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import warnings
import zlib

try:
    from PIL import Image, ImageDraw
    import PIL
except ImportError:
    sys.stderr.write("FAIL: Pillow (Debian package python3-pil) is not installed for %s; "
                     "the parity test cannot run\n" % sys.executable)
    sys.exit(1)

RNG = random.Random(20260515)
FILTERS = {"box": Image.BOX, "bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC,
           "lanczos": Image.LANCZOS}
COLORS = [(255, 0, 0), (0, 180, 0), (0, 0, 255), (204, 180, 0), (255, 0, 255),
          (0, 255, 255), (128, 0, 0), (0, 128, 0), (0, 0, 128), (128, 128, 0)]


# ---- random pictures -------------------------------------------------------------------------

def random_picture(w, h):
    """Noise, smooth gradients and hard edges mixed, so every filter lobe matters."""
    noise = Image.frombytes("RGB", (w, h), RNG.randbytes(w * h * 3))
    kind = RNG.randrange(4)
    if kind == 0:
        return noise
    small = Image.frombytes("RGB", (max(1, w // 7), max(1, h // 5)),
                            RNG.randbytes(max(1, w // 7) * max(1, h // 5) * 3))
    smooth = small.resize((w, h), Image.BILINEAR)
    if kind == 1:
        return smooth
    blocks = Image.new("RGB", (w, h), tuple(RNG.randrange(256) for _ in range(3)))
    d = ImageDraw.Draw(blocks)
    for _ in range(6):
        x0, x1 = sorted(RNG.randrange(w) for _ in range(2))
        y0, y1 = sorted(RNG.randrange(h) for _ in range(2))
        d.rectangle([x0, y0, x1, y1], fill=tuple(RNG.choice((0, 255, RNG.randrange(256)))
                                                  for _ in range(3)))
    if kind == 2:
        return blocks
    return Image.blend(Image.blend(noise, smooth, 0.6), blocks, 0.5)


# ---- reference implementations of upstream helpers (spec 06) ---------------------------------

def resize_pilimage(img, size, m=32):
    while min(img.size) >= 2 * size:
        img = img.resize(tuple(x // 2 for x in img.size), resample=Image.BOX)
    w, h = img.size
    s_max = size * size
    scale = math.sqrt(s_max / (w * h))
    cands = [(round(w * scale) // m * m, round(h * scale) // m * m),
             (round(w * scale) // m * m, math.floor(h * scale) // m * m),
             (math.floor(w * scale) // m * m, round(h * scale) // m * m),
             (math.floor(w * scale) // m * m, math.floor(h * scale) // m * m)]
    cands = sorted(cands, key=lambda c: c[0] * c[1], reverse=True)
    for nw, nh in cands:
        if nw * nh <= s_max:
            break
    s1, s2 = w / nw, h / nh
    if s1 < s2:
        img = img.resize([nw, round(h / s1)], resample=Image.BICUBIC)
        top = (round(h / s1) - nh) // 2
        return img.crop((0, top, nw, top + nh))
    img = img.resize([round(w / s2), nh], resample=Image.BICUBIC)
    left = (round(w / s2) - nw) // 2
    return img.crop((left, 0, left + nw, nh))


def boxes_to_pixels(boxes, w, h):
    out = []
    for b in boxes:
        x1, x2, y1, y2 = [float(v) for v in b]
        mx = max(abs(x1), abs(y1), abs(x2), abs(y2))
        if mx <= 1.0:
            x1, x2, y1, y2 = x1 * w, x2 * w, y1 * h, y2 * h
        elif mx <= 100.0:
            x1, x2 = x1 / 100.0 * w, x2 / 100.0 * w
            y1, y2 = y1 / 100.0 * h, y2 / 100.0 * h
        x1, x2 = sorted((x1, x2))
        y1, y2 = sorted((y1, y2))
        r = [max(0, min(w - 1, int(round(x1)))), max(0, min(h - 1, int(round(y1)))),
             max(0, min(w - 1, int(round(x2)))), max(0, min(h - 1, int(round(y2))))]
        if r[2] <= r[0] or r[3] <= r[1]:
            return None
        out.append(r)
    return out


def draw_layout(rects, w, h):
    edge = math.sqrt(w * h)
    max_line = int(edge * 0.05)
    gap = max(1, max_line // 5)
    img = Image.new("RGB", (w, h), (0, 0, 0))
    d = ImageDraw.Draw(img)
    order = sorted(range(len(rects)),
                   key=lambda i: max(0, rects[i][2] - rects[i][0]) * max(0, rects[i][3] - rects[i][1]),
                   reverse=True)[:5]
    for k, i in enumerate(order):
        d.rectangle(rects[i], outline=COLORS[k % 10], width=max(max_line - k * gap, 5))
    return img


def add_border(img, color, width):
    img = img.copy()
    d = ImageDraw.Draw(img)
    w, h = img.size
    for t in range(width):
        d.rectangle([t, t, w - 1 - t, h - 1 - t], outline=color)
    return img


# ---- hand-made PNGs (Pillow cannot write 16-bit colour or short palettes) ---------------------

def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def pack_row(samples, depth):
    if depth == 8:
        return bytes(samples)
    if depth == 16:
        return b"".join(struct.pack(">H", s) for s in samples)
    out, acc, nbits = bytearray(), 0, 0
    for s in samples:
        acc = (acc << depth) | s
        nbits += depth
        if nbits == 8:
            out.append(acc)
            acc, nbits = 0, 0
    if nbits:
        out.append(acc << (8 - nbits))
    return bytes(out)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
         (0, 1, 1, 2)]


def make_png(w, h, color_type, depth, pixels, plte=None, trns=None, interlace=False):
    """pixels[y][x] is a tuple of samples for the colour type."""
    raw = bytearray()
    passes = ADAM7 if interlace else [(0, 0, 1, 1)]
    for (x0, y0, dx, dy) in passes:
        if x0 >= w or y0 >= h:
            continue
        for y in range(y0, h, dy):
            samples = [s for x in range(x0, w, dx) for s in pixels[y][x]]
            raw += b"\0" + pack_row(samples, depth)
    data = b"\x89PNG\r\n\x1a\n"
    data += png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0,
                                            1 if interlace else 0))
    if plte is not None:
        data += png_chunk(b"PLTE", bytes(c for rgb in plte for c in rgb))
    if trns is not None:
        data += png_chunk(b"tRNS", trns)
    data += png_chunk(b"IDAT", zlib.compress(bytes(raw)))
    data += png_chunk(b"IEND", b"")
    return data


def png_cases():
    cases = []
    w, h = 13, 7
    for depth in (1, 2, 4, 8, 16):
        px = [[(RNG.randrange(1 << depth),) for _ in range(w)] for _ in range(h)]
        if depth == 16:  # values below and above 255: Pillow clips mode "I"
            px[0][0], px[0][1] = (200,), (256,)
        cases.append(("gray%d" % depth, make_png(w, h, 0, depth, px)))
    for depth in (8, 16):
        n = 3
        px = [[tuple(RNG.randrange(1 << depth) for _ in range(n)) for _ in range(w)]
              for _ in range(h)]
        cases.append(("rgb%d" % depth, make_png(w, h, 2, depth, px)))
        cases.append(("rgb%d_interlaced" % depth, make_png(w, h, 2, depth, px, interlace=True)))
        cases.append(("rgb%d_trns" % depth,
                      make_png(w, h, 2, depth, px, trns=struct.pack(">HHH", 1, 2, 3))))
        px = [[tuple(RNG.randrange(1 << depth) for _ in range(2)) for _ in range(w)]
              for _ in range(h)]
        cases.append(("ga%d" % depth, make_png(w, h, 4, depth, px)))
        px = [[tuple(RNG.randrange(1 << depth) for _ in range(4)) for _ in range(w)]
              for _ in range(h)]
        cases.append(("rgba%d" % depth, make_png(w, h, 6, depth, px)))
        cases.append(("rgba%d_interlaced" % depth, make_png(w, h, 6, depth, px, interlace=True)))
    px = [[(RNG.randrange(1 << 16),) for _ in range(w)] for _ in range(h)]
    px[1][1] = (7,)
    cases.append(("gray16_interlaced", make_png(w, h, 0, 16, px, interlace=True)))
    for depth in (1, 2, 4, 8):
        n = 1 << depth
        plte = [tuple(RNG.randrange(256) for _ in range(3)) for _ in range(n)]
        px = [[(RNG.randrange(n),) for _ in range(w)] for _ in range(h)]
        cases.append(("pal%d" % depth, make_png(w, h, 3, depth, px, plte=plte)))
        cases.append(("pal%d_trns" % depth,
                      make_png(w, h, 3, depth, px, plte=plte, trns=bytes([0, 128]))))
        cases.append(("pal%d_interlaced" % depth,
                      make_png(w, h, 3, depth, px, plte=plte, interlace=True)))
    # a short palette with indices past its end (Pillow: grey ramp there)
    plte = [(10, 20, 30), (200, 100, 50), (1, 2, 3)]
    px = [[(RNG.randrange(3),) for _ in range(w)] for _ in range(h)]
    px[0][0], px[2][5], px[6][12] = (3,), (200,), (255,)
    cases.append(("pal8_short", make_png(w, h, 3, 8, px, plte=plte)))
    return cases


# ---- the comparison --------------------------------------------------------------------------

class Runner:
    def __init__(self, tool, tmp):
        self.tool, self.tmp = tool, tmp
        self.lines, self.expect = [], []
        self.n = 0

    def path(self, ext="png"):
        self.n += 1
        return os.path.join(self.tmp, "f%05d.%s" % (self.n, ext))

    def save(self, img):
        p = self.path()
        img.save(p)
        return p

    def add(self, what, args, expected):
        out = self.path()
        self.lines.append(" ".join(a.replace("OUT", out) for a in args))
        self.expect.append((what, out, expected))

    def run(self):
        cmds = os.path.join(self.tmp, "commands.txt")
        with open(cmds, "w") as f:
            f.write("\n".join(self.lines) + "\n")
        r = subprocess.run([self.tool, "batch", cmds], capture_output=True, text=True)
        if r.returncode != 0:
            sys.stderr.write("FAIL: %s batch failed: %s\n" % (self.tool, r.stderr.strip()))
            return 1
        bad = 0
        for what, out, expected in self.expect:
            got = Image.open(out)
            if got.size != expected.size:
                print("FAIL %s: size %s, Pillow %s" % (what, got.size, expected.size))
                bad += 1
                continue
            a, b = got.convert("RGB").tobytes(), expected.convert("RGB").tobytes()
            if a != b:
                diff = [i for i in range(len(a)) if a[i] != b[i]]
                i = diff[0]
                px = i // 3
                print("FAIL %s: %d of %d bytes differ; first at pixel (%d, %d) channel %d: "
                      "%d vs Pillow %d" % (what, len(diff), len(a), px % got.size[0],
                                           px // got.size[0], i % 3, a[i], b[i]))
                bad += 1
        return bad


def main():
    if len(sys.argv) != 2:
        sys.stderr.write("usage: pillow_parity.py HD_RESIZE\n")
        return 2
    warnings.simplefilter("ignore")  # Pillow's palette-transparency notice
    tool = os.path.abspath(sys.argv[1])
    tmp = tempfile.mkdtemp(prefix="hd-parity-")
    try:
        r = Runner(tool, tmp)
        counts = {}

        def count(kind):
            counts[kind] = counts.get(kind, 0) + 1

        # resize: extremes, one-axis changes, up and down, big reductions
        sizes = [(1, 1), (1, 9), (9, 1), (2, 3), (31, 17), (64, 64), (97, 41), (200, 150),
                 (160, 120), (333, 77), (512, 300), (17, 640)]
        for _ in range(14):
            sizes.append((RNG.randrange(1, 400), RNG.randrange(1, 400)))
        for (w, h) in sizes:
            src = random_picture(w, h)
            sp = r.save(src)
            targets = [(max(1, w // 2), max(1, h // 2)), (w, max(1, h * 3 // 2)),
                       (max(1, w * 2 // 3), h), (w * 3 + 1, h * 2 + 1),
                       (RNG.randrange(1, 300), RNG.randrange(1, 300)),
                       (max(1, w // 9), max(1, h // 7)), (w, h)]
            for (tw, th) in targets:
                for name, f in FILTERS.items():
                    r.add("resize %dx%d->%dx%d %s" % (w, h, tw, th, name),
                          ["resize", sp, "OUT", str(tw), str(th), name],
                          src.resize((tw, th), f))
                    count("resize")

        # resize_pilimage, including the BOX halving path and crops on both axes
        for (w, h, s) in [(200, 150, 96), (160, 120, 64), (96, 96, 48), (100, 150, 96),
                          (64, 200, 96), (1000, 700, 128), (700, 1000, 100), (900, 600, 320),
                          (403, 302, 96), (257, 1024, 64), (1200, 500, 256), (640, 640, 160),
                          (33, 47, 64), (150, 100, 384)]:
            src = random_picture(w, h)
            sp = r.save(src)
            r.add("resize_pilimage %dx%d S=%d" % (w, h, s), ["prep", sp, "OUT", str(s)],
                  resize_pilimage(src, s))
            count("resize_pilimage")

        # crop, including boxes partly outside the picture
        src = random_picture(50, 40)
        sp = r.save(src)
        for box in [(0, 0, 50, 40), (5, 7, 30, 39), (-5, -3, 20, 10), (40, 30, 70, 55),
                    (-10, -10, 60, 50)]:
            r.add("crop %s" % (box,), ["crop", sp, "OUT"] + [str(v) for v in box], src.crop(box))
            count("crop")

        # rectangle outlines: widths larger than the box, corners outside, swapped x
        for _ in range(60):
            w, h = RNG.randrange(5, 120), RNG.randrange(5, 120)
            src = random_picture(w, h)
            sp = r.save(src)
            x0, x1 = sorted(RNG.randrange(-10, w + 10) for _ in range(2))
            y0, y1 = sorted(RNG.randrange(-10, h + 10) for _ in range(2))
            if RNG.random() < 0.15:
                x0, x1 = x1, x0  # Pillow 9.4 draws these; newer versions raise
            width = RNG.choice([1, 2, 3, 5, RNG.randrange(1, 60)])
            color = tuple(RNG.randrange(256) for _ in range(3))
            exp = src.copy()
            ImageDraw.Draw(exp).rectangle([x0, y0, x1, y1], outline=color, width=width)
            r.add("rectangle %s width %d on %dx%d" % ((x0, y0, x1, y1), width, w, h),
                  ["rect", sp, "OUT", str(x0), str(y0), str(x1), str(y1)]
                  + [str(c) for c in color] + [str(width)], exp)
            count("rectangle")

        # reference borders (nested rectangles), including widths over half the picture
        for (w, h, bw) in [(64, 32, 1), (96, 64, 3), (32, 160, 2), (128, 96, 13), (33, 20, 12),
                           (20, 33, 25), (64, 64, 0)]:
            src = random_picture(w, h)
            sp = r.save(src)
            color = tuple(RNG.randrange(256) for _ in range(3))
            r.add("border %dx%d width %d" % (w, h, bw),
                  ["border", sp, "OUT"] + [str(c) for c in color] + [str(bw)],
                  add_border(src, color, bw))
            count("border")

        # layout images: fractions, percentages, pixels, swapped corners, >5 boxes, ties
        layouts = [
            (128, 96, [[0.1, 0.45, 0.2, 0.9], [0.55, 0.95, 0.1, 0.6]]),
            (2048, 2048, [[0.05, 0.5, 0.05, 0.5], [0.5, 0.95, 0.5, 0.95], [0.2, 0.3, 0.6, 0.9]]),
            (2560, 1440, [[10, 60, 20, 80], [50, 95, 5, 50]]),
            (3104, 1312, [[100, 900, 50, 600], [1200, 3000, 100, 1200]]),
            (256, 256, [[0.9, 0.1, 0.8, 0.2], [0.0, 1.0, 0.0, 1.0], [0.3, 0.31, 0.3, 0.31]]),
            (320, 192, [[0.1, 0.2, 0.1, 0.2], [0.2, 0.3, 0.2, 0.3], [0.5, 0.6, 0.5, 0.6],
                        [0.0, 0.5, 0.0, 0.5], [0.6, 0.9, 0.1, 0.3], [0.7, 0.8, 0.7, 0.95],
                        [0.3, 0.4, 0.6, 0.7]]),
            (96, 64, []),
        ]
        for _ in range(10):
            w, h = RNG.randrange(1, 40) * 32, RNG.randrange(1, 40) * 32
            boxes = []
            for _ in range(RNG.randrange(1, 8)):
                a, b = sorted(RNG.random() for _ in range(2))
                c, d = sorted(RNG.random() for _ in range(2))
                boxes.append([round(a, 3), round(b, 3) + 0.05, round(c, 3), round(d, 3) + 0.05])
            layouts.append((w, h, boxes))
        for (w, h, boxes) in layouts:
            rects = boxes_to_pixels(boxes, w, h)
            if rects is None:
                continue
            js = json.dumps(boxes)
            r.add("layout %dx%d %s" % (w, h, js), ["layout", "OUT", str(w), str(h), "'%s'" % js],
                  draw_layout(rects, w, h))
            count("layout")

        # decoding like Image.open(...).convert("RGB")
        for name, data in png_cases():
            p = r.path("png")
            with open(p, "wb") as f:
                f.write(data)
            r.add("load png %s" % name, ["convert", p, "OUT"], Image.open(p).convert("RGB"))
            count("load")
        src = random_picture(61, 37)
        saved = [("png_rgb", "png", src, {}),
                 ("png_L", "png", src.convert("L"), {}),
                 ("png_P", "png", src.convert("P", palette=Image.ADAPTIVE), {}),
                 ("png_RGBA", "png", src.convert("RGBA"), {}),
                 ("png_1", "png", src.convert("1"), {}),
                 ("jpeg_rgb", "jpg", src, {"quality": 90}),
                 ("jpeg_rgb_444", "jpg", src, {"quality": 75, "subsampling": 0}),
                 ("jpeg_progressive", "jpg", src, {"progressive": True}),
                 ("jpeg_L", "jpg", src.convert("L"), {}),
                 ("jpeg_cmyk", "jpg", src.convert("CMYK"), {}),
                 ("webp_lossy", "webp", src, {"quality": 80}),
                 ("webp_lossless", "webp", src, {"lossless": True})]
        rgba = src.convert("RGBA")
        rgba.putalpha(Image.frombytes("L", src.size, RNG.randbytes(src.size[0] * src.size[1])))
        saved.append(("webp_rgba_lossless", "webp", rgba, {"lossless": True}))
        saved.append(("webp_rgba_lossy", "webp", rgba, {"quality": 70}))
        saved.append(("png_rgba_alpha", "png", rgba, {}))
        for name, ext, img, kw in saved:
            p = r.path(ext)
            img.save(p, **kw)
            r.add("load %s" % name, ["convert", p, "OUT"], Image.open(p).convert("RGB"))
            count("load")

        bad = r.run()
        total = sum(counts.values())
        print("Pillow %s parity: %s" % (PIL.__version__,
                                        ", ".join("%d %s" % (n, k) for k, n in counts.items())))
        if bad:
            print("FAIL: %d of %d comparisons differ" % (bad, total))
            return 1
        print("PASS: all %d comparisons byte-identical" % total)
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
