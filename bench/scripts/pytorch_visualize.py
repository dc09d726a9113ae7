"""PyTorch reference of Reverie's feature visualization (`reverie visualize`), written as a
PyTorch user would: torchvision's GoogLeNet with the weights of its ONNX export (see
pytorch_deepdream.py), forward truncated at the objective's layer, frozen weights, and the loop
Reverie runs:

- Lucid's Fourier parameterization (1/f-scaled spectrum, inverse real FFT, decorrelated colour,
  sigmoid), random normal start with sd 0.01;
- Lucid's standard transforms: pad 12 (gray), jitter 8, scale 0.90..1.10, rotate -10..10 degrees
  (reflecting borders), jitter 4;
- objective: the mean of one channel; Adam with lr 0.05.

Prints JSON {"seconds": ..., "objective": ...}; with --out, writes the image as raw float32."""
import argparse, json, math, os, random, sys, time
import numpy as np
import torch, torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_deepdream import model_from_export

STEMS = ["conv1", "maxpool1", "conv2", "conv3", "maxpool2", "inception3a", "inception3b", "maxpool3",
         "inception4a", "inception4b", "inception4c", "inception4d", "inception4e", "maxpool4", "inception5a", "inception5b"]

COLOR_SQRT = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--export", required=True)
    ap.add_argument("--layer", default="inception4c"); ap.add_argument("--channel", type=int, default=97)
    ap.add_argument("--size", type=int, default=224); ap.add_argument("--steps", type=int, default=512)
    ap.add_argument("--lr", type=float, default=0.05); ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2); ap.add_argument("--out")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = random.Random(a.seed)
    model = model_from_export(a.export, torch.float32)
    for p in model.parameters():
        p.requires_grad_(False)
    stem = [getattr(model, n) for n in STEMS[:STEMS.index(a.layer) + 1]]
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)

    h = w = a.size
    fy = torch.from_numpy(np.fft.fftfreq(h)[:, None])
    fx = torch.from_numpy(np.fft.rfftfreq(w)[None, :])
    scale = (1.0 / torch.sqrt(fx * fx + fy * fy).clamp(min=1.0 / max(h, w))).float()[None, None]
    color = COLOR_SQRT / COLOR_SQRT.norm(dim=0).max()
    spectrum = (torch.randn(1, 3, h, w // 2 + 1, 2) * 0.01).requires_grad_(True)
    adam = torch.optim.Adam([spectrum], lr=a.lr)
    scales = [1 + (i - 5) / 50 for i in range(11)]
    angles = list(range(-10, 11)) + [0] * 5

    def image():
        img = torch.fft.irfft2(torch.view_as_complex(spectrum * scale[..., None]), s=(h, w), norm="ortho") / 4
        return torch.einsum("nchw,dc->ndhw", img, color).sigmoid()

    def jitter(x, d):
        dx, dy = rng.randrange(d), rng.randrange(d)
        return x[:, :, dy:x.shape[2] - d + 1 + dy, dx:x.shape[3] - d + 1 + dx]

    t0 = time.perf_counter()
    for _ in range(a.steps):
        adam.zero_grad()
        x = F.pad(image(), (12, 12, 12, 12), value=0.5)
        x = jitter(x, 8)
        s = scales[rng.randrange(len(scales))]
        if s != 1:
            x = F.interpolate(x, size=(round(x.shape[2] * s), round(x.shape[3] * s)), mode="bilinear", align_corners=False)
        deg = angles[rng.randrange(len(angles))]
        if deg != 0:
            r = math.radians(deg)
            theta = torch.tensor([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0]], dtype=torch.float32)[None]
            grid = F.affine_grid(theta, list(x.shape), align_corners=False)
            x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
        x = jitter(x, 4)
        act = (x - mean) / std
        for layer in stem:
            act = layer(act)
        value = act[:, a.channel].mean()
        (-value).backward()
        adam.step()
    seconds = time.perf_counter() - t0
    with torch.no_grad():
        final = image()
    if a.out:
        final.numpy().astype(np.float32).tofile(a.out)
    print(json.dumps({"seconds": seconds, "objective": value.item()}))

if __name__ == "__main__":
    main()
