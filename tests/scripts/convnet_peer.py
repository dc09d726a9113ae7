#!/usr/bin/env python3
"""PyTorch peer of Reverie's ConvNet and trainer step. Builds the network a Reverie checkpoint
JSON describes, loads a state_dict (.pth), and for gray inputs X (N,1,H,W raw float32) with labels:
writes the eval-mode logits, then does one training step (train mode, cross-entropy, AdamW with
decay on weights of dimension > 1 only) and writes the gradients and every tensor of the state_dict after it.
usage: convnet_peer.py SPEC.json WEIGHTS.pth X.f32 LABELS(comma) LR OUT_DIR"""
import json, os, sys
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

spec_path, weights, xfile, labels, lr, out = sys.argv[1:7]
info = json.load(open(spec_path))
spec, inp = info["architecture"], info["input"]
torch.set_num_threads(2)

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
            if t == "conv":
                m = Block(c, l); c = l["out"]; s = l.get("stride", 1); h = (h + s - 1) // s; w = (w + s - 1) // s
            elif t == "pool":
                m = nn.MaxPool2d(2, 2); h //= 2; w //= 2
            elif t == "gap":
                m = nn.AdaptiveAvgPool2d(1); h = w = 1
            elif t == "flatten":
                m = None; flat = True
            elif t == "dropout":
                m = nn.Dropout(l["p"])
            elif t == "dense":
                m = nn.Linear(c * h * w if flat else c, l["out"]); c = l["out"]; h = w = 1; flat = True
            name = l.get("name") or f"_{t}{i}"
            if m is not None:
                self.add_module(name, m)
            self.order.append((t, m))
    def forward(self, x):
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
net.load_state_dict(torch.load(weights))
x = torch.from_numpy(np.fromfile(xfile, dtype=np.float32)).reshape(-1, spec["inputChannels"], spec["inputHeight"], spec["inputWidth"])
mean = torch.tensor(inp["mean"]).reshape(1, -1, 1, 1)
std = torch.tensor(inp["std"]).reshape(1, -1, 1, 1)
x = (x - mean) / std
y = torch.tensor([int(v) for v in labels.split(",")])
os.makedirs(out, exist_ok=True)
net.eval()
with torch.no_grad():
    net(x).numpy().astype(np.float32).tofile(os.path.join(out, "logits.f32"))
net.train()
decay = [p for p in net.parameters() if p.dim() > 1]
rest = [p for p in net.parameters() if p.dim() <= 1]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": 1e-4}, {"params": rest, "weight_decay": 0.0}], lr=float(lr))
loss = F.cross_entropy(net(x), y)
opt.zero_grad()
loss.backward()
for k, p in net.named_parameters():
    p.grad.detach().numpy().astype(np.float32).tofile(os.path.join(out, "grad." + k + ".f32"))
opt.step()
print(json.dumps({"loss": loss.item()}))
for k, v in net.state_dict().items():
    v.detach().numpy().astype(np.float32).tofile(os.path.join(out, "after." + k + ".f32"))
