"""Convolution FLOPs (2 per multiply-add) of an ONNX graph's forward up to a tensor, at given
input sizes, from ONNX shape inference: prints JSON {"HxW": flops, ...}.
usage: conv_flops.py MODEL.onnx UPTO H1xW1 [H2xW2 ...]; UPTO a tensor name, or concat:K for the
K-th Concat output in graph order (bvlc_googlenet's tensors are anonymous: concat:5 is inception_4c)."""
import json, sys
import onnx
from onnx import shape_inference

def flops(model_path, upto, h, w):
    m = onnx.load(model_path)
    inits0 = {t.name for t in m.graph.initializer}
    inp = next(i for i in m.graph.input if i.name not in inits0)  # old exports list initializers as inputs too
    dims = inp.type.tensor_type.shape.dim
    dims[2].dim_value, dims[3].dim_value = h, w
    m = shape_inference.infer_shapes(m)
    shapes = {}
    for v in list(m.graph.value_info) + list(m.graph.output) + list(m.graph.input):
        shapes[v.name] = [d.dim_value for d in v.type.tensor_type.shape.dim]
    inits = {t.name: list(t.dims) for t in m.graph.initializer}
    # the nodes the wanted tensor depends on
    producer = {o: n for n in m.graph.node for o in n.output}
    if upto.startswith("concat:"):
        upto = [n for n in m.graph.node if n.op_type == "Concat"][int(upto[7:]) - 1].output[0]
    need, stack = set(), [upto]
    while stack:
        t = stack.pop()
        n = producer.get(t)
        if n is None or id(n) in need: continue
        need.add(id(n)); stack.extend(n.input)
    total = 0
    for n in m.graph.node:
        if n.op_type != "Conv" or id(n) not in need: continue
        wshape = inits[n.input[1]]            # [Cout, Cin/g, kh, kw]
        out = shapes[n.output[0]]             # [N, Cout, Ho, Wo]
        total += 2 * wshape[0] * wshape[1] * wshape[2] * wshape[3] * out[2] * out[3]
    return total

model, upto = sys.argv[1], sys.argv[2]
print(json.dumps({s: flops(model, upto, *map(int, s.split("x"))) for s in sys.argv[3:]}))
