"""PyTorch reference of Reverie's Gatys style transfer (`reverie style`), written as a PyTorch
user would: torchvision's GoogLeNet with the weights of its ONNX export (see
pytorch_deepdream.py), forward truncated at the deepest layer used, frozen weights, and the
loop Reverie runs: content loss = mean squared feature difference, style loss = mean squared
difference of Gram matrices normalized by C*H*W, TV = half the sum of squared neighbour
differences on the 0..255 image, weights 5 / 100 / 1e-3, L-BFGS (lr 1, history 100) from the
content image, one iteration per step.

Prints JSON {"seconds": ..., "style_first": ..., "style_last": ...}."""
import argparse, json, os, sys, time
import numpy as np
import torch, torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_deepdream import model_from_export
from pytorch_visualize import STEMS

def load(path, size):
    img = Image.open(path).convert("RGB")
    w, h = img.size
    f = size / max(w, h)
    img = img.resize((max(1, round(w * f)), max(1, round(h * f))), Image.BILINEAR)
    return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255).permute(2, 0, 1)[None].contiguous()

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("content"); ap.add_argument("style")
    ap.add_argument("--export", required=True)
    ap.add_argument("--size", type=int, default=512); ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--content-layer", default="inception4a")
    ap.add_argument("--style-layers", default="conv1,conv2,inception3a,inception3b,inception4a")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model = model_from_export(a.export, torch.float32)
    for p in model.parameters():
        p.requires_grad_(False)
    style_layers = a.style_layers.split(",")
    wanted = set(style_layers) | {a.content_layer}
    deepest = max(STEMS.index(n) for n in wanted)
    stem = [(n, getattr(model, n)) for n in STEMS[:deepest + 1]]
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)

    def features(x):
        out, h = {}, (x - mean) / std
        for n, layer in stem:
            h = layer(h)
            if n in wanted:
                out[n] = h
        return out

    def gram(f):
        n, c = f.shape[:2]
        f = f.reshape(n, c, -1)
        return f @ f.transpose(1, 2) / (c * f.shape[2])

    content, style = load(a.content, a.size), load(a.style, a.size)
    with torch.no_grad():
        target = features(content)[a.content_layer]
        grams = {n: gram(f) for n, f in features(style).items() if n in style_layers}
    x = content.clone().requires_grad_(True)
    opt = torch.optim.LBFGS([x], lr=1, max_iter=1, history_size=100)
    record = []

    def closure():
        opt.zero_grad()
        f = features(x)
        c = (f[a.content_layer] - target).pow(2).mean()
        s = sum((gram(f[n]) - grams[n]).pow(2).mean() for n in style_layers)
        y = x * 255
        tv = 0.5 * ((y[..., 1:] - y[..., :-1]).pow(2).sum() + (y[..., 1:, :] - y[..., :-1, :]).pow(2).sum())
        loss = 5 * c + 100 * s + 1e-3 * tv
        loss.backward()
        record.append(s.item())
        return loss

    t0 = time.perf_counter()
    for _ in range(a.steps):
        opt.step(closure)
    seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": seconds, "style_first": record[0], "style_last": record[-1], "evaluations": len(record)}))

if __name__ == "__main__":
    main()
