"""Grad-CAM on Caffe's BVLC GoogLeNet in PyTorch, as a reference for Reverie's: the ONNX graph run
node by node with torch.nn.functional (Conv, Relu, MaxPool, LRN, Concat, AveragePool, Dropout as
identity, Reshape, Gemm, Softmax), the image preprocessed as Reverie's registry entry says (RGB
0..1 to BGR 0..255 minus the ImageNet mean), Grad-CAM written from the paper (Selvaraju et al.
2017): the class logit's gradient at a layer, averaged over positions, weights the layer's
channels; their sum, ReLU.

usage: gradcam_reference.py MODEL.onnx IMAGE.f32 H W CLASS LAYER_TENSOR OUT.f32
IMAGE.f32 holds [1,3,H,W] float32 RGB in 0..1; OUT.f32 gets the coarse map [h,w] float32 and the
script prints JSON {"shape": [h, w], "logit": ...}."""
import json, sys
import numpy as np
import onnx
from onnx import numpy_helper
import torch, torch.nn.functional as F

def main():
    model, image, h, w, cls, layer, out = sys.argv[1:8]
    h, w, cls = int(h), int(w), int(cls)
    torch.set_num_threads(2)
    graph = onnx.load(model).graph
    inits = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in graph.initializer}
    data = next(i.name for i in graph.input if i.name not in inits)
    attrs = lambda n: {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
    x = torch.from_numpy(np.fromfile(image, dtype=np.float32).reshape(1, 3, h, w)).requires_grad_(True)
    mean = torch.tensor([123.68, 116.779, 103.939]).view(1, 3, 1, 1)
    env = {data: (x * 255 - mean).flip(1)}
    logits = None
    for node in graph.node:
        a = attrs(node)
        ins = [env[i] if i in env else inits[i] for i in node.input if i]
        op = node.op_type
        if op == "Conv":
            t, l, b, r = a.get("pads", [0, 0, 0, 0])
            y = F.conv2d(F.pad(ins[0], (l, r, t, b)), ins[1], ins[2] if len(ins) > 2 else None, stride=a.get("strides", [1, 1]), groups=a.get("group", 1))
        elif op == "Relu":
            y = F.relu(ins[0])
        elif op == "MaxPool":
            # ONNX pads are [top, left, bottom, right]; F.pad takes (left, right, top, bottom).
            t, l, b, r = a.get("pads", [0, 0, 0, 0])
            y = F.max_pool2d(F.pad(ins[0], (l, r, t, b), value=float("-inf")), a["kernel_shape"], a.get("strides", [1, 1]), ceil_mode=bool(a.get("ceil_mode", 0)))
        elif op == "AveragePool":
            t, l, b, r = a.get("pads", [0, 0, 0, 0])
            k, st = a["kernel_shape"], a.get("strides", [1, 1])
            total = F.avg_pool2d(F.pad(ins[0], (l, r, t, b)), k, st) * (k[0] * k[1])
            if a.get("count_include_pad", 0):
                y = total / (k[0] * k[1])
            else:  # the average over the real (unpadded) values only
                ones = F.pad(torch.ones_like(ins[0][:, :1]), (l, r, t, b))
                y = total / (F.avg_pool2d(ones, k, st) * (k[0] * k[1]))
        elif op == "LRN":
            y = F.local_response_norm(ins[0], a["size"], a.get("alpha", 1e-4), a.get("beta", 0.75), a.get("bias", 1.0))
        elif op == "Concat":
            y = torch.cat(ins, dim=a["axis"])
        elif op == "Dropout":
            y = ins[0]
        elif op == "Reshape":
            y = ins[0].reshape([int(v) for v in ins[1].tolist()])
        elif op == "Gemm":
            A = ins[0].t() if a.get("transA", 0) else ins[0]
            B = ins[1].t() if a.get("transB", 0) else ins[1]
            y = a.get("alpha", 1.0) * (A @ B) + a.get("beta", 1.0) * ins[2]
            logits = y
        elif op == "Softmax":
            y = F.softmax(ins[0], dim=a.get("axis", 1))
        else:
            raise SystemExit(f"unsupported operator {op}")
        env[node.output[0]] = y
    acts = env[layer]
    acts.retain_grad()
    logits[0, cls].backward()
    g = acts.grad
    weights = g.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * acts).sum(1))[0].detach()
    cam.numpy().astype(np.float32).tofile(out)
    print(json.dumps({"shape": list(cam.shape), "logit": float(logits[0, cls])}))

if __name__ == "__main__":
    main()
