"""PyTorch reference timings for `reverie explain` on Caffe's BVLC GoogLeNet: Grad-CAM at
inception_5b/output (one forward and backward) and integrated gradients with 64 steps (a
right Riemann sum from a black image, in batches of 16, as Captum's default-free form), on one
224 px image, written as a PyTorch user would: the ONNX graph run node by node with
torch.nn.functional (tests/scripts/gradcam_reference.py's interpreter, with the batch kept through
the classifier's Reshape).

usage: pytorch_explain.py MODEL.onnx IMAGE.f32 CLASS LAYER_TENSOR [--reps N] [--threads T]
prints JSON {"gradcam": seconds, "ig": seconds} (medians)."""
import argparse, json, statistics, time
import numpy as np
import onnx
from onnx import numpy_helper
import torch, torch.nn.functional as F

def build(path):
    graph = onnx.load(path).graph
    inits = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in graph.initializer}
    data = next(i.name for i in graph.input if i.name not in inits)
    nodes = [(n, {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}) for n in graph.node]
    mean = torch.tensor([123.68, 116.779, 103.939]).view(1, 3, 1, 1)
    def run(x, keep=None):
        env = {data: (x * 255 - mean).flip(1)}
        kept = logits = None
        for node, a in nodes:
            ins = [env[i] if i in env else inits[i] for i in node.input if i]
            op = node.op_type
            if op == "Conv":
                t, l, b, r = a.get("pads", [0, 0, 0, 0])
                y = F.conv2d(F.pad(ins[0], (l, r, t, b)), ins[1], ins[2], stride=a.get("strides", [1, 1]))
            elif op == "Relu":
                y = F.relu(ins[0])
            elif op == "MaxPool":
                t, l, b, r = a.get("pads", [0, 0, 0, 0])
                y = F.max_pool2d(F.pad(ins[0], (l, r, t, b), value=float("-inf")), a["kernel_shape"], a.get("strides", [1, 1]))
            elif op == "AveragePool":
                t, l, b, r = a.get("pads", [0, 0, 0, 0])
                k, st = a["kernel_shape"], a.get("strides", [1, 1])
                ones = F.pad(torch.ones_like(ins[0][:, :1]), (l, r, t, b))
                y = F.avg_pool2d(F.pad(ins[0], (l, r, t, b)), k, st) / F.avg_pool2d(ones, k, st)
            elif op == "LRN":
                y = F.local_response_norm(ins[0], a["size"], a.get("alpha", 1e-4), a.get("beta", 0.75), a.get("bias", 1.0))
            elif op == "Concat":
                y = torch.cat(ins, dim=a["axis"])
            elif op == "Dropout":
                y = ins[0]
            elif op == "Reshape":
                shape = [int(v) for v in ins[1].tolist()]
                if shape[0] == 1 and ins[0].shape[0] > 1 and ins[0].numel() == ins[0].shape[0] * int(np.prod(shape[1:])):
                    shape[0] = ins[0].shape[0]
                y = ins[0].reshape(shape)
            elif op == "Gemm":
                y = (ins[0] @ (ins[1].t() if a.get("transB", 0) else ins[1])) + ins[2]
                logits = y
                break
            else:
                raise SystemExit(f"unsupported operator {op}")
            env[node.output[0]] = y
            if node.output[0] == keep:
                kept = y
        return logits, kept
    return run

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model"); ap.add_argument("image"); ap.add_argument("cls", type=int); ap.add_argument("layer")
    ap.add_argument("--reps", type=int, default=3); ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    run = build(a.model)
    x = torch.from_numpy(np.fromfile(a.image, dtype=np.float32).reshape(1, 3, 224, 224))

    def gradcam():
        xi = x.clone().requires_grad_(True)
        logits, acts = run(xi, a.layer)
        g, = torch.autograd.grad(logits[0, a.cls], acts)
        return F.relu((g.mean(dim=(2, 3), keepdim=True) * acts).sum(1))[0].detach()

    def ig(steps=64, batch=16):
        total = torch.zeros_like(x)
        for start in range(1, steps + 1, batch):
            alphas = torch.arange(start, min(start + batch, steps + 1), dtype=torch.float32).view(-1, 1, 1, 1) / steps
            path = (alphas * x).requires_grad_(True)
            logits, _ = run(path)
            g, = torch.autograd.grad(logits[:, a.cls].sum(), path)
            total += g.sum(0, keepdim=True)
        return (x * total / steps).sum(1)[0]

    times = {}
    for name, fn in (("gradcam", gradcam), ("ig", ig)):
        fn()  # warm-up
        samples = []
        for _ in range(a.reps):
            t0 = time.perf_counter(); fn(); samples.append(time.perf_counter() - t0)
        times[name] = statistics.median(samples)
    print(json.dumps(times))

if __name__ == "__main__":
    main()
