"""Writes PyTorch weights files for Reverie's reader tests into DIR: a small network's seeded
state_dict saved with torch.save in the zip and the legacy format, in float32, float16 and
bfloat16, a checkpoint dictionary wrapping a state_dict, and, as hostile input, a pickle that
would run a shell command if it were executed (it names os.system), and an archive whose first
storage is cut in half (a tensor whose shape disagrees with its storage). Each tensor is also written
as raw float32 (NAME.f32) with a manifest, so the test can compare values.

usage: save_state_dicts.py DIR"""
import json, os, pickle, sys
import torch
import torch.nn as nn

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
torch.manual_seed(0)
net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 4 * 4, 5))
with torch.no_grad():
    net[1].running_mean.uniform_(-1, 1)
    net[1].running_var.uniform_(0.5, 2)
sd = net.state_dict()
# A non-contiguous view, as a transposed weight would be stored.
sd["extra.transposed"] = net[4].weight.t()
manifest = {}
for name, t in sd.items():
    manifest[name] = {"shape": list(t.shape), "dtype": str(t.dtype)}
    t.detach().float().contiguous().numpy().tofile(os.path.join(out, name + ".f32"))
json.dump(manifest, open(os.path.join(out, "manifest.json"), "w"))
for dtype in ["float32", "float16", "bfloat16"]:
    d = {k: (v.to(getattr(torch, dtype)) if v.is_floating_point() else v) for k, v in sd.items()}
    torch.save(d, os.path.join(out, f"zip_{dtype}.pth"))
    torch.save(d, os.path.join(out, f"legacy_{dtype}.pth"), _use_new_zipfile_serialization=False)
torch.save({"epoch": 3, "state_dict": sd, "note": "checkpoint"}, os.path.join(out, "checkpoint.pth"))


class Evil:
    def __reduce__(self):
        return (os.system, ("touch " + os.path.join(out, "PWNED"),))


with open(os.path.join(out, "evil.pkl"), "wb") as f:
    pickle.dump({"weight": Evil()}, f, protocol=2)

# A tensor whose shape disagrees with its storage: the zip archive with its first storage cut in half.
import zipfile
with zipfile.ZipFile(os.path.join(out, "zip_float32.pth")) as src, zipfile.ZipFile(os.path.join(out, "short_storage.pth"), "w") as dst:
    for info in src.infolist():
        data = src.read(info.filename)
        if info.filename.endswith("/data/0"):
            data = data[: len(data) // 2]
        dst.writestr(info.filename, data)
