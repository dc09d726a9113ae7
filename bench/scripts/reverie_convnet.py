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
