#!/usr/bin/env python3
"""One Fashion-MNIST epoch of Reverie's `fashion` architecture in PyTorch: the peer of
`bench ... -- train`. Same layers, initialization bounds, AdamW with cosine decay, batch size
and shuffled order as Reverie's trainer (no augmentation in either). Prints JSON."""
import argparse, gzip, json, math, time
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
p.add_argument("--batch", type=int, default=128)
p.add_argument("--lr", type=float, default=1e-3)
p.add_argument("--limit", type=int, default=0, help="use only the first N training images")
p.add_argument("--threads", type=int, default=2)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)

def idx(path, dims):
    with gzip.open(path) as f:
        raw = f.read()
    shape = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)

x = torch.from_numpy(idx(f"{a.data}/train-images-idx3-ubyte.gz", 3).copy()).float().div(255).unsqueeze(1)
y = torch.from_numpy(idx(f"{a.data}/train-labels-idx1-ubyte.gz", 1).astype(np.int64))
if a.limit:
    x, y = x[: a.limit], y[: a.limit]

def block(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())

net = nn.Sequential(
    block(1, 32), nn.MaxPool2d(2, 2), block(32, 64), block(64, 64), nn.MaxPool2d(2, 2),
    nn.Flatten(), nn.Dropout(0.3), nn.Linear(64 * 7 * 7, 256), nn.ReLU(), nn.Dropout(0.3), nn.Linear(256, 10))
opt = torch.optim.AdamW(net.parameters(), lr=a.lr, weight_decay=1e-4)
steps = math.ceil(len(x) / a.batch)
sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))
mean, std = 0.286, 0.353
order = torch.randperm(len(x))
net.train()
t0 = time.perf_counter()
total, correct, loss_sum = 0, 0, 0.0
for b in range(steps):
    i = order[b * a.batch:(b + 1) * a.batch]
    xb, yb = (x[i] - mean) / std, y[i]
    logits = net(xb)
    loss = F.cross_entropy(logits, yb)
    opt.zero_grad(set_to_none=False)
    loss.backward()
    opt.step()
    sched.step()
    loss_sum += loss.item() * len(i)
    correct += (logits.argmax(1) == yb).sum().item()
    total += len(i)
seconds = time.perf_counter() - t0
print(json.dumps({"seconds": seconds, "images": total, "loss": loss_sum / total, "accuracy": correct / total, "torch": torch.__version__}))
