"""The network a Reverie checkpoint's `architecture` describes, built in PyTorch with the same
module names (so a Reverie state_dict loads into it), and a reader of safetensors files
(an 8-byte little-endian header length, a JSON header, raw data). Shared by the PGD benchmark
and the tests' parity script."""
import json, struct
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, cin, layer):
        super().__init__()
        bn = layer.get("batchNorm", True)
        k = layer.get("kernel", 3)
        self.conv = nn.Conv2d(cin, layer["out"], k, stride=layer.get("stride", 1), padding=k // 2, bias=not bn)
        self.norm = nn.BatchNorm2d(layer["out"]) if bn else None

    def forward(self, x):
        x = self.conv(x)
        return F.relu(self.norm(x) if self.norm is not None else x)


class ConvNet(nn.Module):
    """Takes normalized input (the checkpoint's input spec applied by the caller)."""

    def __init__(self, spec):
        super().__init__()
        self.order = []
        c, h, w = spec["inputChannels"], spec["inputHeight"], spec["inputWidth"]
        flat = False
        for i, layer in enumerate(spec["layers"]):
            t = layer["type"]
            m = None
            if t == "conv":
                m = Block(c, layer); c = layer["out"]; s = layer.get("stride", 1); h = (h + s - 1) // s; w = (w + s - 1) // s
            elif t == "pool":
                m = nn.MaxPool2d(2, 2); h //= 2; w //= 2
            elif t == "gap":
                m = nn.AdaptiveAvgPool2d(1); h = w = 1
            elif t == "flatten":
                flat = True
            elif t == "dropout":
                m = nn.Dropout(layer["p"])
            elif t == "dense":
                m = nn.Linear(c * h * w if flat else c, layer["out"]); c = layer["out"]; h = w = 1; flat = True
            if m is not None:
                self.add_module(layer.get("name") or f"_{t}{i}", m)
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


def read_safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    types = {"F32": np.float32, "I64": np.int64, "F16": np.float16}
    state = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        b, e = v["data_offsets"]
        state[k] = torch.from_numpy(np.frombuffer(raw[8 + n + b: 8 + n + e], dtype=types[v["dtype"]]).reshape(v["shape"]).copy())
    return state


class Normalized(nn.Module):
    """A checkpoint's network with its input normalization: takes images in 0..1."""

    def __init__(self, checkpoint):
        super().__init__()
        info = json.load(open(checkpoint))
        inp = info["input"]
        self.net = ConvNet(info["architecture"])
        self.register_buffer("mean", torch.tensor(inp["mean"]).reshape(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(inp["std"]).reshape(1, -1, 1, 1))
        self.net.load_state_dict(read_safetensors(checkpoint[:-5] + ".safetensors"))
        self.eval()
        for q in self.parameters():
            q.requires_grad_(False)

    def forward(self, x):
        return self.net((x - self.mean) / self.std)


def fashion_test(data, images):
    """The first `images` Fashion-MNIST test images (N,1,28,28 in 0..1) and labels, from the IDX files."""
    import gzip

    def idx(path, dims):
        with gzip.open(path) as f:
            r = f.read()
        shape = [int.from_bytes(r[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
        return np.frombuffer(r, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)

    x = torch.from_numpy(idx(f"{data}/t10k-images-idx3-ubyte.gz", 3)[:images].copy()).float().div(255).unsqueeze(1)
    y = torch.from_numpy(idx(f"{data}/t10k-labels-idx1-ubyte.gz", 1)[:images].astype(np.int64))
    return x, y
