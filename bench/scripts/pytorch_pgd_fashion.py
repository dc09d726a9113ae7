#!/usr/bin/env python3
"""PGD-40 on Fashion-MNIST test images in PyTorch: the peer of `bench ... -- pgd`. Builds the
network a Reverie checkpoint JSON describes, reads its safetensors weights (both with
reverie_convnet.py), and runs the same
loop as Reverie's Attack.Run: random start in the eps-ball, 40 signed-gradient steps of the
cross-entropy, projection onto the ball and into 0..1 after each. Prints JSON."""
import argparse, json, os, sys, time
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reverie_convnet import Normalized, fashion_test  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("checkpoint")
p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
p.add_argument("--images", type=int, default=1000)
p.add_argument("--eps", type=float, default=0.1)
p.add_argument("--steps", type=int, default=40)
p.add_argument("--batch", type=int, default=250)
p.add_argument("--threads", type=int, default=2)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)

net = Normalized(a.checkpoint)
x_all, y_all = fashion_test(a.data, a.images)
alpha = a.eps / a.steps
t0 = time.perf_counter()
correct = 0
for s in range(0, len(x_all), a.batch):
    x0, y = x_all[s:s + a.batch], y_all[s:s + a.batch]
    x = (x0 + (torch.rand_like(x0) * 2 - 1) * a.eps).clamp(0, 1)
    for _ in range(a.steps):
        x.requires_grad_(True)
        loss = F.cross_entropy(net(x), y, reduction="sum")
        g, = torch.autograd.grad(loss, [x])
        with torch.no_grad():
            x = torch.min(torch.max(x + alpha * g.sign(), x0 - a.eps), x0 + a.eps).clamp(0, 1)
    with torch.no_grad():
        correct += (net(x).argmax(1) == y).sum().item()
seconds = time.perf_counter() - t0
print(json.dumps({"seconds": seconds, "images": len(x_all), "robust_accuracy": correct / len(x_all), "torch": torch.__version__}))
