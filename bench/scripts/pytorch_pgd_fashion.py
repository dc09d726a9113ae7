#!/usr/bin/env python3
"""PGD-40 on Fashion-MNIST test images in PyTorch: the peer of `bench ... -- pgd`. Builds the
network a Reverie checkpoint JSON describes, reads its safetensors weights (parsed here: the
format is an 8-byte header length, a JSON header and raw little-endian data), and runs the same
loop as Reverie's Attack.Run: random start in the eps-ball, 40 signed-gradient steps of the
cross-entropy, projection onto the ball and into 0..1 after each. Prints JSON."""
import argparse, gzip, json, struct, time
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

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

info = json.load(open(a.checkpoint))
spec, inp = info["architecture"], info["input"]
raw = open(a.checkpoint[:-5] + ".safetensors", "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + n])
types = {"F32": np.float32, "I64": np.int64, "F16": np.float16}
state = {}
for k, v in header.items():
    if k == "__metadata__":
        continue
    b, e = v["data_offsets"]
    state[k] = torch.from_numpy(np.frombuffer(raw[8 + n + b: 8 + n + e], dtype=types[v["dtype"]]).reshape(v["shape"]).copy())

class Block(nn.Module):
    def __init__(self, cin, l):
        super().__init__()
        bn = l.get("batchNorm", True)
        self.conv = nn.Conv2d(cin, l["out"], l.get("kernel", 3), stride=l.get("stride", 1), padding=l.get("kernel", 3) // 2, bias=not bn)
        self.norm = nn.BatchNorm2d(l["out"]) if bn else None
    def forward(self, x):
        x = self.conv(x)
        return F.relu(self.norm(x) if self.norm is not None else x)

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.order = []
        c, h, w = spec["inputChannels"], spec["inputHeight"], spec["inputWidth"]
        flat = False
        for i, l in enumerate(spec["layers"]):
            t = l["type"]
            m = None
            if t == "conv":
                m = Block(c, l); c = l["out"]; s = l.get("stride", 1); h = (h + s - 1) // s; w = (w + s - 1) // s
            elif t == "pool":
                m = nn.MaxPool2d(2, 2); h //= 2; w //= 2
            elif t == "gap":
                m = nn.AdaptiveAvgPool2d(1); h = w = 1
            elif t == "flatten":
                flat = True
            elif t == "dropout":
                m = nn.Dropout(l["p"])
            elif t == "dense":
                m = nn.Linear(c * h * w if flat else c, l["out"]); c = l["out"]; h = w = 1; flat = True
            if m is not None:
                self.add_module(l.get("name") or f"_{t}{i}", m)
            self.order.append((t, m))
        self.register_buffer("mean", torch.tensor(inp["mean"]).reshape(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(inp["std"]).reshape(1, -1, 1, 1))
    def forward(self, x):
        x = (x - self.mean) / self.std
        last = len(self.order) - 1
        for i, (t, m) in enumerate(self.order):
            if t == "flatten":
                x = x.flatten(1)
            elif t == "gap":
                x = m(x).flatten(1)
            else:
                x = m(x)
                if t == "dense" and i != last:
                    x = F.relu(x)
        return x

net = Net()
net.load_state_dict(state, strict=False)
net.eval()
for q in net.parameters():
    q.requires_grad_(False)

def idx(path, dims):
    with gzip.open(path) as f:
        r = f.read()
    shape = [int.from_bytes(r[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(r, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)

x_all = torch.from_numpy(idx(f"{a.data}/t10k-images-idx3-ubyte.gz", 3)[: a.images].copy()).float().div(255).unsqueeze(1)
y_all = torch.from_numpy(idx(f"{a.data}/t10k-labels-idx1-ubyte.gz", 1)[: a.images].astype(np.int64))
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
