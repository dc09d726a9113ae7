"""Writes the same 40x20 test picture in every format Reverie reads (PNG, JPEG, BMP, WebP,
GIF with two frames) and as a JPEG whose pixels are stored rotated with EXIF orientation 6.
usage: make_image_fixtures.py OUT_DIR"""
import os, sys
from PIL import Image

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
img = Image.new("RGB", (40, 20), (220, 30, 30))
for x in range(20, 40):
    for y in range(20):
        img.putpixel((x, y), (30, 40, 210))
for x in range(6):
    for y in range(6):
        img.putpixel((x, y), (20, 200, 40))
img.save(os.path.join(out, "ref.png"))
img.save(os.path.join(out, "ref.jpg"), quality=100, subsampling=0)
img.save(os.path.join(out, "ref.bmp"))
img.save(os.path.join(out, "ref.webp"), lossless=True)
second = Image.new("RGB", (40, 20), (0, 0, 0))
img.save(os.path.join(out, "ref.gif"), save_all=True, append_images=[second], duration=100)
# Orientation 6: the viewer rotates the stored pixels 90 degrees clockwise.
stored = img.transpose(Image.Transpose.ROTATE_90)
exif = Image.Exif()
exif[0x0112] = 6
stored.save(os.path.join(out, "rotated.jpg"), quality=100, subsampling=0, exif=exif.tobytes())
# PNG kinds for the row-by-row shrinking decoder: a noisy 123x77 picture in every colour type.
import random
rng = random.Random(7)
noisy = Image.new("RGBA", (123, 77))
noisy.putdata([(rng.randrange(256), rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(123 * 77)])
noisy.save(os.path.join(out, "kind-rgba.png"))
noisy.convert("RGB").save(os.path.join(out, "kind-rgb.png"))
noisy.convert("L").save(os.path.join(out, "kind-l.png"))
noisy.convert("LA").save(os.path.join(out, "kind-la.png"))
noisy.convert("RGB").convert("P", palette=Image.Palette.ADAPTIVE, colors=200).save(os.path.join(out, "kind-p.png"))
noisy.convert("L").convert("I;16").save(os.path.join(out, "kind-16.png"))
