"""The ReLU-gradient redirect's reference: a torchvision architecture (seeded random weights) whose
ReLUs (and ReLU6s) pass LEAK of the gradient where their input is at or below zero, written as an
autograd function of its own; forward values are unchanged. Writes the state_dict (zip format), a
seeded input in 0..1, and the input gradient of mean(LAYER²) with plain ReLUs and with the redirect.

usage: relu_redirect.py ARCH LAYER OUTDIR SIDE LEAK"""
import os
import sys
import numpy as np
import torch
import torchvision

arch, layer, out, side, leak = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
torch.manual_seed(0)
model = getattr(torchvision.models, arch)(weights=None).eval()
for m in model.modules():  # torchvision's in-place ReLUs would overwrite the layer the hook captured
    if hasattr(m, "inplace"):
        m.inplace = False
torch.save(model.state_dict(), os.path.join(out, "weights.pth"))


class LeakyGradient(torch.autograd.Function):
    """max(x, 0) (capped at `top` when given) forward; backward: the usual gradient where x > 0, leak * g where x <= 0."""

    @staticmethod
    def forward(ctx, x, top):
        ctx.save_for_backward(x)
        ctx.top = top
        return x.clamp(min=0) if top is None else x.clamp(0, top)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        inside = (x > 0) if ctx.top is None else (x > 0) & (x < ctx.top)
        return torch.where(x > 0, g * inside.to(g.dtype), g * leak), None


class Redirected(torch.nn.Module):
    def __init__(self, top):
        super().__init__()
        self.top = top

    def forward(self, x):
        return LeakyGradient.apply(x, self.top)


def gradient(net):
    captured = {}
    handle = dict(net.named_modules())[layer].register_forward_hook(lambda m, i, o: captured.setdefault("y", o))
    x = torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(1)).requires_grad_(True)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    net((x - mean) / std)
    captured["y"].pow(2).mean().backward()
    handle.remove()
    return x.detach(), x.grad


x, plain = gradient(model)
for name, m in list(model.named_modules()):
    for child_name, child in list(m.named_children()):
        if isinstance(child, torch.nn.ReLU6):
            setattr(m, child_name, Redirected(6.0))
        elif isinstance(child, torch.nn.ReLU):
            setattr(m, child_name, Redirected(None))
_, leaky = gradient(model)
x.numpy().astype(np.float32).tofile(os.path.join(out, "x.f32"))
plain.numpy().astype(np.float32).tofile(os.path.join(out, "plain.f32"))
leaky.numpy().astype(np.float32).tofile(os.path.join(out, "leaky.f32"))
