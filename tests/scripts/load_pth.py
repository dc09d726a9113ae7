"""Loads a .pth file with PyTorch's own restricted loader (torch.load(..., weights_only=True)) and
prints JSON: name -> {"shape": [...], "values": [...]} (as float64).

usage: load_pth.py FILE.pth"""
import json, sys
import torch

sd = torch.load(sys.argv[1], weights_only=True)
print(json.dumps({k: {"shape": list(v.shape), "dtype": str(v.dtype), "values": v.double().flatten().tolist()} for k, v in sd.items()}))
