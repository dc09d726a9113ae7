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

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench", "scripts"))
from reverie_convnet import ConvNet  # noqa: E402

spec_path, weights, xfile, labels, lr, out = sys.argv[1:7]
info = json.load(open(spec_path))
spec, inp = info["architecture"], info["input"]
torch.set_num_threads(2)

net = ConvNet(spec)
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
