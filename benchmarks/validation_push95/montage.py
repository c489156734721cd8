import sys, numpy as np
sys.path.insert(0, '/work/wt/push95')
from PIL import Image, ImageDraw
from cbir.gallery.dataset import Gallery
g = Gallery.load('/work/cache/lead9/gallery')
ids = [322, 516, 764, 1708, 2596, 2618, 2774, 2984, 3081, 5366, 5383, 5745, 6273, 6319, 6405, 6683, 6781, 7052, 7609, 8564, 9325]
S = 160
M = Image.new('RGB', (S * 7, (S + 14) * 3), 'white')
for k, i in enumerate(ids):
    im = g.image(i).convert('RGB'); im.thumbnail((S, S))
    x, y = (k % 7) * S, (k // 7) * (S + 14)
    M.paste(im, (x, y + 14)); ImageDraw.Draw(M).text((x + 2, y), f'{i} {g.labels[i]}', fill='black')
M.save('/work/cache/push95/hardcore.png')
