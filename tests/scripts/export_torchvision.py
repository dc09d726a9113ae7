"""Exports torchvision models with seeded random weights to ONNX, for parity tests against
ONNX Runtime and benchmarks. Run with Debian's python3 (python3-torch, python3-torchvision).

usage: export_torchvision.py OUT_DIR NAME[:OPSET] ...
"""
import sys, os
import torch, torchvision

def build(name):
    torch.manual_seed(0)
    m = getattr(torchvision.models, name)
    kwargs = {"weights": None}
    if name == "googlenet":
        kwargs.update(aux_logits=False, init_weights=True)
    model = m(**kwargs).eval()
    with torch.no_grad():
        for mod in model.modules():
            # He initialisation keeps activations and gradients of order one through the depth
            # (torchvision's own small-std init makes gradients underflow to ~1e-14, where
            # float32 rounding dominates and comparisons measure noise).
            if isinstance(mod, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(mod.weight, nonlinearity="relu")
            # BatchNorm statistics that are not the identity, so that the export carries real arithmetic.
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.1, 0.1)
                mod.running_var.uniform_(0.5, 1.5)
    return model

def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for spec in sys.argv[2:]:
        name, _, opset = spec.partition(":")
        opset = int(opset or 13)
        path = os.path.join(out, f"{name}_op{opset}.onnx")
        if os.path.exists(path):
            continue
        model = build(name)
        x = torch.rand(1, 3, 224, 224)
        tmp = path + ".tmp"
        torch.onnx.export(model, x, tmp, opset_version=opset, input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "n", 2: "h", 3: "w"}, "logits": {0: "n"}}, do_constant_folding=True)
        os.replace(tmp, path)
        print(path)

if __name__ == "__main__":
    main()
