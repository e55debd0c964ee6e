"""A reader for the 8-bit, non-interlaced grey or RGB PNGs anamo writes (stb_image_write):
enough to compare `anamo reconstruct`'s grid with the reconstructions made here."""
import struct
import zlib

import numpy as np


def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def read_png(path):
    """The pixels as a uint8 array (height, width) or (height, width, 3)."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path}: not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, color, _, _, interlace = header
    assert depth == 8 and color in (0, 2) and interlace == 0, f"{path}: unsupported PNG"
    bpp = 1 if color == 0 else 3
    raw = zlib.decompress(idat)
    stride = width * bpp
    out = bytearray(height * stride)
    prev = bytearray(stride)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            pred = (0, a, b, (a + b) // 2, _paeth(a, b, c))[f]
            line[x] = (line[x] + pred) & 0xFF
        out[y * stride:(y + 1) * stride] = line
        prev = line
    img = np.frombuffer(bytes(out), np.uint8).reshape(height, width, bpp)
    return img[:, :, 0] if bpp == 1 else img


def to_byte(v):
    """src/program/png.c's to_byte: 0 below, 255 from 1 on, else (uint8)(v·255 + 0.5) in float."""
    v = np.asarray(v, np.float32)
    scaled = (v * np.float32(255.0) + np.float32(0.5)).astype(np.float32)
    out = np.where(v >= 1, 255, np.where(v > 0, np.trunc(scaled), 0))
    return out.astype(np.uint8)


def grid_tiles(img, count, cols, h, w, nbands, band):
    """The tiles of one band in anamo_image_grid_png's layout (1-pixel gaps, no magnifying:
    images of 28 pixels a side and more), as (count, h, w)."""
    gap = 1
    tiles = []
    for i in range(count):
        row = (i // cols) * nbands + band
        y0, x0 = gap + row * (h + gap), gap + (i % cols) * (w + gap)
        tiles.append(img[y0:y0 + h, x0:x0 + w])
    return np.stack(tiles)
