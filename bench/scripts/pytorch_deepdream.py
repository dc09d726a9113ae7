"""PyTorch reference of Reverie's DeepDream, written as a PyTorch user would: torchvision's
GoogLeNet, forward truncated at inception4c, frozen weights, the notebook's algorithm
(octave pyramid carrying the detail up, roll jitter from a given list of offsets, L2 objective,
step = size * g / mean|g|, clipping to 0..1).

The weights are those of an ONNX export of the same model (tests/scripts/export_torchvision.py):
the exporter folds each BatchNorm into its convolution in float32, so the reference takes the
folded weights from the file (BatchNorm replaced by identity) and both sides compute with
bit-identical weights.

With --bvlc FILE the network is instead Caffe's BVLC GoogLeNet from its ONNX file (the one
users dream with), run node by node in PyTorch up to inception_4c/output (the fifth Concat):
Conv, Relu, MaxPool, LRN (torch's local_response_norm) and Concat, BGR 0..255 minus the
ImageNet mean, as Reverie's registry entry feeds it.

Writes the result as raw float32 [1,3,H,W] and prints JSON {"seconds": ...}."""
import argparse, json, math, time
import numpy as np
import onnx
from onnx import numpy_helper
import torch, torch.nn.functional as F
import torchvision
from PIL import Image

def model_from_export(path, dtype):
    model = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=False).eval()
    graph = onnx.load(path).graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    modules = dict(model.named_modules())
    for node in graph.node:
        if node.op_type != "Conv":
            continue
        path_ = ".".join(p for p in node.name.strip("/").split("/")[:-1])
        # "/inception4c/branch2/branch2.0/conv/Conv" -> inception4c.branch2.0.conv
        parts = []
        for seg in node.name.strip("/").split("/")[:-1]:
            if parts and seg.startswith(parts[-1] + "."):
                parts[-1] = seg
            else:
                parts.append(seg)
        conv = modules[".".join(parts)]
        conv.weight = torch.nn.Parameter(torch.from_numpy(inits[node.input[1]].copy()), requires_grad=False)
        conv.bias = torch.nn.Parameter(torch.from_numpy(inits[node.input[2]].copy()), requires_grad=False)
        parent = modules[".".join(parts[:-1])] if len(parts) > 1 else model
        if hasattr(parent, "bn"):
            parent.bn = torch.nn.Identity()
    return model.to(dtype)

def bvlc_stem(path, dtype, concats=5):
    """Caffe's GoogLeNet from its ONNX graph as a PyTorch function of the preprocessed image,
    truncated after the given number of Concat nodes."""
    graph = onnx.load(path).graph
    inits = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()).to(dtype) for t in graph.initializer}
    attrs = lambda n: {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
    nodes, seen = [], 0
    for node in graph.node:
        nodes.append((node, attrs(node)))
        if node.op_type == "Concat":
            seen += 1
            if seen == concats:
                break
    data = next(i.name for i in graph.input if i.name not in inits)
    def run(x):
        env = {data: x}
        for node, a in nodes:
            ins = [env[i] if i in env else inits[i] for i in node.input]
            op = node.op_type
            if op == "Conv":
                p = a.get("pads", [0, 0, 0, 0])
                y = F.conv2d(ins[0], ins[1], ins[2] if len(ins) > 2 else None, stride=a.get("strides", [1, 1]), padding=(p[0], p[1]), groups=a.get("group", 1))
            elif op == "Relu":
                y = F.relu(ins[0])
            elif op == "MaxPool":
                p = a.get("pads", [0, 0, 0, 0])
                y = F.max_pool2d(ins[0], a["kernel_shape"], a.get("strides", [1, 1]), (p[0], p[1]))
            elif op == "LRN":
                y = F.local_response_norm(ins[0], a["size"], a.get("alpha", 1e-4), a.get("beta", 0.75), a.get("bias", 1.0))
            elif op == "Concat":
                y = torch.cat(ins, dim=a["axis"])
            else:
                raise SystemExit(f"unexpected operator {op} before inception_4c")
            env[node.output[0]] = y
        return y
    return run

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("image"); ap.add_argument("out"); ap.add_argument("offsets")
    ap.add_argument("--export"); ap.add_argument("--bvlc")
    ap.add_argument("--octaves", type=int, default=4); ap.add_argument("--scale", type=float, default=1.4)
    ap.add_argument("--steps", type=int, default=10); ap.add_argument("--step-size", type=float, default=1.5)
    ap.add_argument("--threads", type=int, default=2); ap.add_argument("--dtype", default="float32")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    dtype = torch.float64 if a.dtype == "float64" else torch.float32
    offsets = json.load(open(a.offsets))
    if a.bvlc:
        body = bvlc_stem(a.bvlc, dtype)
        # BGR, 0..255, minus the ImageNet mean (given in RGB order, as Reverie's input spec holds it).
        mean = torch.tensor([123.68, 116.779, 103.939], dtype=torch.float32).to(dtype).view(1, 3, 1, 1)
        def net(x):
            return body((x * 255 - mean).flip(1))
    else:
        model = model_from_export(a.export, dtype)
        for p in model.parameters():
            p.requires_grad_(False)
        stem = [model.conv1, model.maxpool1, model.conv2, model.conv3, model.maxpool2,
                model.inception3a, model.inception3b, model.maxpool3, model.inception4a, model.inception4b, model.inception4c]
        # The constants as float32 values, as Reverie's input spec holds them.
        mean = torch.tensor([0.485, 0.456, 0.406], dtype=torch.float32).to(dtype).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225], dtype=torch.float32).to(dtype).view(1, 3, 1, 1)
        def net(x):
            h = (x - mean) / std
            for layer in stem:
                h = layer(h)
            return h

    def resize(x, h, w):
        shrink = h < x.shape[2] or w < x.shape[3]
        return F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=shrink)

    img = torch.from_numpy(np.asarray(Image.open(a.image).convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1)[None].contiguous().to(dtype)
    t0 = time.perf_counter()
    sizes = [tuple(img.shape[2:])]
    for _ in range(a.octaves - 1):
        h, w = sizes[-1]
        sizes.append((max(1, math.floor(h / a.scale + 0.5)), max(1, math.floor(w / a.scale + 0.5))))
    bases = [img]
    for h, w in sizes[1:]:
        bases.insert(0, resize(bases[0], h, w))
    detail, k = None, 0
    for base in bases:
        detail = torch.zeros_like(base) if detail is None else resize(detail, base.shape[2], base.shape[3])
        cur = (base + detail).clamp(0, 1)
        for _ in range(a.steps):
            dx, dy = offsets[k]; k += 1
            x = torch.roll(cur, shifts=(dy, dx), dims=(2, 3)).requires_grad_(True)
            (0.5 * net(x).pow(2).mean()).backward()
            g = torch.roll(x.grad, shifts=(-dy, -dx), dims=(2, 3))
            with torch.no_grad():
                cur = (cur + g * (a.step_size / 255 / (g.abs().mean() + 1e-12))).clamp(0, 1)
        detail = cur - base
    seconds = time.perf_counter() - t0
    cur.to(torch.float32).numpy().tofile(a.out)
    print(json.dumps({"seconds": seconds, "shape": list(cur.shape)}))

if __name__ == "__main__":
    main()
