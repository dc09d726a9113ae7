"""Saves a torchvision architecture (seeded random weights, torchvision's own initialization,
batch-norm statistics randomized so that they matter) as a float32 state_dict in the zip
format, and writes its logits and one intermediate module's output for a seeded input in 0..1
(normalized with ImageNet's mean and std, as Reverie's networks do inside). GoogLeNet and
Inception-v3 are built as torchvision builds them for their pretrained weights: transform_input
on, auxiliary classifiers present in the file.

usage: torchvision_native.py ARCH LAYER OUT.pth OUT_input.f32 OUT_logits.f32 OUT_layer.f32 SIDE"""
import sys
import numpy as np
import torch
import torchvision

arch, layer, out, inp, logits_path, layer_path, side = sys.argv[1:8]
side = int(side)
torch.manual_seed(0)
kwargs = {"transform_input": True, "aux_logits": True, "init_weights": True} if arch in ("googlenet", "inception_v3") else {}
model = getattr(torchvision.models, arch)(weights=None, **kwargs).eval()
with torch.no_grad():
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.uniform_(0.5, 1.5)
            m.bias.uniform_(-0.2, 0.2)
torch.save(model.state_dict(), out)
captured = {}
dict(model.named_modules())[layer].register_forward_hook(lambda m, i, o: captured.setdefault("x", o))
x = torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(1))
mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
with torch.no_grad():
    logits = model((x - mean) / std)
x.numpy().astype(np.float32).tofile(inp)
logits.numpy().astype(np.float32).tofile(logits_path)
captured["x"].numpy().astype(np.float32).tofile(layer_path)
