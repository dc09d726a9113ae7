"""PyTorch reference for the forward benchmark: torchvision GoogLeNet (seeded random weights),
forward up to inception4c plus the input gradient of its L2, 2 threads, frozen weights.
Prints JSON {size: median seconds}.  usage: pytorch_googlenet_forward.py REPS SIZE [SIZE...]"""
import json, sys, time
import torch, torchvision

torch.set_num_threads(2)
torch.manual_seed(0)
model = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=True).eval()
for p in model.parameters():
    p.requires_grad_(False)
with torch.no_grad():
    for mod in model.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.1, 0.1)
            mod.running_var.uniform_(0.5, 1.5)

stem = [model.conv1, model.maxpool1, model.conv2, model.conv3, model.maxpool2,
        model.inception3a, model.inception3b, model.maxpool3, model.inception4a, model.inception4b, model.inception4c]

def step(x):
    x = x.detach().requires_grad_(True)
    h = x
    for layer in stem:
        h = layer(h)
    h.pow(2).sum().backward()
    return x.grad

reps = int(sys.argv[1])
out = {}
for size in map(int, sys.argv[2:]):
    x = torch.rand(1, 3, size, size)
    step(x)  # warm-up
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        step(x)
        times.append(time.perf_counter() - t)
    times.sort()
    out[size] = times[len(times) // 2]
print(json.dumps(out))
