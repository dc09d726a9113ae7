"""The load-parity matrix for one torchvision architecture. Builds it as torchvision_native.py
does (seeded random weights, randomized batch-norm statistics; GoogLeNet's convolutions
He-initialized, see below; GoogLeNet and Inception-v3 with
transform_input and their auxiliary classifiers), then writes its state_dict six ways into DIR:
torch.save in the zip and the legacy format, each in float32 and float16, and safetensors
(written here from the format's specification) in float32 and float16. For each precision it
writes the reference for a seeded input x in 0..1 (normalized with ImageNet's mean and std):
the logits, and the gradient of mean(LAYER output²) with respect to x, computed by torchvision's
model holding exactly the weights of that precision's files (rounded to float16 and back).

usage: torchvision_matrix.py ARCH LAYER DIR SIDE"""
import json, os, struct, sys
import numpy as np
import torch
import torchvision

arch, layer, out, side = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
os.makedirs(out, exist_ok=True)
torch.manual_seed(0)
kwargs = {"transform_input": True, "aux_logits": True, "init_weights": True} if arch in ("googlenet", "inception_v3") else {}
model = getattr(torchvision.models, arch)(weights=None, **kwargs).eval()
with torch.no_grad():
    for m in model.modules():
        if arch == "googlenet" and isinstance(m, torch.nn.Conv2d):
            # torchvision initializes GoogLeNet's convolutions with std 0.01, which leaves its maps
            # almost constant (variations of 1e-4 on 0.33); max pooling then picks its maxima by
            # float rounding, and any two correct implementations disagree on the input gradient.
            # He initialization gives maps that depend on the input, as trained weights do.
            torch.nn.init.kaiming_normal_(m.weight)
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.uniform_(0.5, 1.5)
            m.bias.uniform_(-0.2, 0.2)
state = {k: v.clone() for k, v in model.state_dict().items()}
captured = {}
dict(model.named_modules())[layer].register_forward_hook(lambda m, i, o: captured.__setitem__("x", o))
x = torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(1))
x.numpy().astype(np.float32).tofile(os.path.join(out, "x.f32"))
mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)

ST = {torch.float32: "F32", torch.float16: "F16", torch.int64: "I64"}


def save_safetensors(sd, path):
    header, blobs, offset = {}, [], 0
    for name, t in sd.items():
        t = t.contiguous()
        b = (t.view(torch.int16) if t.dtype == torch.float16 else t).numpy().tobytes()
        header[name] = {"dtype": ST[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


for dtype in ("float32", "float16"):
    d = {k: (v.to(getattr(torch, dtype)) if v.is_floating_point() else v) for k, v in state.items()}
    torch.save(d, os.path.join(out, f"zip_{dtype}.pth"))
    torch.save(d, os.path.join(out, f"legacy_{dtype}.pth"), _use_new_zipfile_serialization=False)
    save_safetensors(d, os.path.join(out, f"{dtype}.safetensors"))
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in d.items()})
    xi = x.clone().requires_grad_(True)
    logits = model((xi - mean) / std)
    captured["x"].pow(2).mean().backward()
    logits.detach().numpy().astype(np.float32).tofile(os.path.join(out, f"logits_{dtype}.f32"))
    xi.grad.numpy().astype(np.float32).tofile(os.path.join(out, f"grad_{dtype}.f32"))
    del d
