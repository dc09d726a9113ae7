"""A safetensors peer written from the format's specification (8-byte little-endian header
length, JSON header with dtype, shape and data_offsets, then the data), for Reverie's tests.

usage: safetensors_peer.py write OUT.safetensors   (a seeded set of tensors; also OUT.json with their values)
       safetensors_peer.py read IN.safetensors      (prints JSON: name -> {dtype, shape, sum, first})"""
import json, struct, sys
import numpy as np
import torch

DT = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32, "U8": np.uint8, "BOOL": np.bool_}

def write(path):
    rng = np.random.default_rng(0)
    tensors = {
        "conv.weight": rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
        "fc.bias": rng.standard_normal(5).astype(np.float64),
        "steps": np.array([7, -3, 1 << 40], dtype=np.int64),
        "mask": np.array([True, False, True]),
    }
    half = torch.from_numpy(rng.standard_normal((2, 3)).astype(np.float32))
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, a in tensors.items():
        b = a.tobytes()
        dt = {np.dtype(np.float32): "F32", np.dtype(np.float64): "F64", np.dtype(np.int64): "I64", np.dtype(np.bool_): "BOOL"}[a.dtype]
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b); offset += len(b)
    for name, t in (("half", half.half()), ("brain", half.bfloat16())):
        b = t.view(torch.int16).numpy().tobytes()
        header[name] = {"dtype": "F16" if name == "half" else "BF16", "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b); offset += len(b)
        tensors[name] = t.float().numpy()
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h))); f.write(h)
        for b in blobs: f.write(b)
    json.dump({k: v.astype(np.float64).ravel().tolist() for k, v in tensors.items()}, open(path + ".json", "w"))

def read(path):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            out[name] = e; continue
        b, end = e["data_offsets"]
        raw = data[8 + n + b:8 + n + end]
        if e["dtype"] in ("F16", "BF16"):
            t = torch.frombuffer(bytearray(raw), dtype=torch.float16 if e["dtype"] == "F16" else torch.bfloat16).float().numpy()
        else:
            t = np.frombuffer(raw, dtype=DT[e["dtype"]])
        assert t.size == int(np.prod(e["shape"])), name
        out[name] = {"dtype": e["dtype"], "shape": e["shape"], "values": t.astype(np.float64).ravel().tolist()}
    print(json.dumps(out))

if __name__ == "__main__":
    {"write": write, "read": read}[sys.argv[1]](sys.argv[2])
