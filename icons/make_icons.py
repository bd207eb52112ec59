# -*- coding: utf-8 -*-
"""Draw the App Host icons (app_logo.png 200x72 at the top level, where SPEC 1 puts it, with icons/app_logo.png
a link to it for resilient-sdk; icons/company_logo.png 100x100).

Our own design, drawn with the standard library only (a tiny PNG writer, no imaging package): an envelope
with an outbound arrow on a blue rounded tile, and the words OUTBOUND EMAIL in a 5x7 pixel font.
Run `python icons/make_icons.py` to redraw both files; the output is byte-for-byte reproducible.
"""

import os
import struct
import zlib

SUPERSAMPLE = 4  # samples per pixel side: smooth edges without an imaging library
BLUE = (15, 82, 186)
WHITE = (255, 255, 255)
ORANGE = (255, 176, 32)

# 5x7 glyphs for the letters the logo uses ("#" = ink)
FONT = {
    "A": [".###.", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"],
    "B": ["####.", "#...#", "#...#", "####.", "#...#", "#...#", "####."],
    "D": ["####.", "#...#", "#...#", "#...#", "#...#", "#...#", "####."],
    "E": ["#####", "#....", "#....", "####.", "#....", "#....", "#####"],
    "I": ["#####", "..#..", "..#..", "..#..", "..#..", "..#..", "#####"],
    "L": ["#....", "#....", "#....", "#....", "#....", "#....", "#####"],
    "M": ["#...#", "##.##", "#.#.#", "#.#.#", "#...#", "#...#", "#...#"],
    "N": ["#...#", "##..#", "#.#.#", "#..##", "#...#", "#...#", "#...#"],
    "O": [".###.", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."],
    "T": ["#####", "..#..", "..#..", "..#..", "..#..", "..#..", "..#.."],
    "U": ["#...#", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."],
}


def png_bytes(width, height, pixels):
    """Encode rows of (r, g, b, a) tuples as an 8-bit RGBA PNG."""
    raw = b"".join(b"\x00" + bytes(channel for pixel in row for channel in pixel) for row in pixels)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def inside_rounded_rect(x, y, left, top, right, bottom, radius):
    if not (left <= x < right and top <= y < bottom):
        return False
    cx = min(max(x, left + radius), right - radius)
    cy = min(max(y, top + radius), bottom - radius)
    return (x - cx) ** 2 + (y - cy) ** 2 <= radius ** 2


def near_segment(x, y, x1, y1, x2, y2, half_width):
    dx, dy = x2 - x1, y2 - y1
    t = max(0.0, min(1.0, ((x - x1) * dx + (y - y1) * dy) / float(dx * dx + dy * dy)))
    return (x - x1 - t * dx) ** 2 + (y - y1 - t * dy) ** 2 <= half_width ** 2


def envelope(left, top, width, height, stroke):
    """Shapes of a white envelope whose flap lines show the tile colour."""
    right, bottom = left + width, top + height
    middle_x, flap_y = left + width / 2.0, top + height * 0.55

    def body(x, y):
        return inside_rounded_rect(x, y, left, top, right, bottom, stroke)

    def flap(x, y):
        return near_segment(x, y, left, top, middle_x, flap_y, stroke / 2.0) or \
            near_segment(x, y, right, top, middle_x, flap_y, stroke / 2.0)

    return [(body, WHITE), (flap, BLUE)]


def arrow(tail_x, y, head_x, size):
    """A right-pointing arrow: a shaft and a triangular head ending at head_x."""
    def shape(px, py):
        in_shaft = tail_x <= px <= head_x - size and abs(py - y) <= size * 0.28
        in_head = head_x - size <= px <= head_x and abs(py - y) <= (head_x - px) * 0.9
        return in_shaft or in_head
    return [(shape, ORANGE)]


def text(word, left, top, scale):
    """Shapes for the word in the pixel font, each glyph cell scale x scale pixels."""
    def shape(x, y):
        column, row = int((x - left) // scale), int((y - top) // scale)
        index, glyph_column = divmod(column, 6)
        if x < left or y < top or row >= 7 or index >= len(word) or glyph_column >= 5:
            return False
        return FONT[word[index]][row][glyph_column] == "#"
    return [(shape, WHITE)]


def render(width, height, radius, shapes):
    """Rasterise a blue rounded tile with shapes painted over it in order (later shapes win)."""
    step = 1.0 / SUPERSAMPLE
    rows = []
    for py in range(height):
        row = []
        for px in range(width):
            total, covered = [0, 0, 0], 0
            for sy in range(SUPERSAMPLE):
                for sx in range(SUPERSAMPLE):
                    x, y = px + (sx + 0.5) * step, py + (sy + 0.5) * step
                    if not inside_rounded_rect(x, y, 0, 0, width, height, radius):
                        continue
                    colour = BLUE
                    for inside, paint in shapes:
                        if inside(x, y):
                            colour = paint
                    covered += 1
                    total = [t + c for t, c in zip(total, colour)]
            if covered:
                alpha = int(round(255.0 * covered / SUPERSAMPLE ** 2))
                row.append(tuple(int(round(t / float(covered))) for t in total) + (alpha,))
            else:
                row.append((0, 0, 0, 0))
        rows.append(row)
    return png_bytes(width, height, rows)


def app_logo():
    shapes = envelope(12, 20, 50, 34, 3) + arrow(44, 52, 70, 10)
    shapes += text("OUTBOUND", 82, 17, 2) + text("EMAIL", 82, 35, 3)
    return render(200, 72, 10, shapes)


def company_logo():
    return render(100, 100, 16, envelope(16, 24, 62, 44, 4) + arrow(52, 68, 88, 14))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    for name, draw in (("app_logo.png", app_logo), ("company_logo.png", company_logo)):
        with open(os.path.join(here, name), "wb") as out:
            out.write(draw())


if __name__ == "__main__":
    main()
