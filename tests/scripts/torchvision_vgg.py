"""Saves torchvision's VGG (seeded random weights, torchvision's own initialization) as a
state_dict, float32, in the zip format, and writes its logits and two feature maps for a seeded
input in 0..1 (normalized with ImageNet's mean and std, as Reverie's networks do inside).

usage: torchvision_vgg.py DEPTH OUT.pth OUT_input.f32 OUT_logits.f32 OUT_relu3_1.f32 SIDE"""
import sys
import numpy as np
import torch
import torchvision

depth, out, inp, logits_path, feat_path, side = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6])
torch.manual_seed(0)
model = getattr(torchvision.models, f"vgg{depth}")(weights=None).eval()
torch.save(model.state_dict(), out)
x = torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(1))
mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
with torch.no_grad():
    h = (x - mean) / std
    relu3_1 = model.features[:12](h)
    logits = model(h)
x.numpy().astype(np.float32).tofile(inp)
logits.numpy().astype(np.float32).tofile(logits_path)
relu3_1.numpy().astype(np.float32).tofile(feat_path)
