"""Builds a Johnson et al. style transformer network in PyTorch (reflection-padded convolutions,
instance norm, five residual blocks, nearest-neighbour upsampling followed by convolutions, as
fast-style implementations commonly write it), with seeded random weights, exports it to ONNX
(opset 11, dynamic height and width) and writes the network's own output on a seeded input, so
that Reverie's importer can be checked against PyTorch.

usage: export_johnson_net.py OUT.onnx OUT_input.f32 OUT_output.f32 HEIGHT WIDTH"""
import sys
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class Conv(nn.Module):
    def __init__(self, cin, cout, k, stride=1, upsample=None):
        super().__init__()
        self.upsample = upsample
        self.pad = nn.ReflectionPad2d(k // 2)
        self.conv = nn.Conv2d(cin, cout, k, stride)

    def forward(self, x):
        if self.upsample:
            x = F.interpolate(x, scale_factor=self.upsample, mode="nearest")
        return self.conv(self.pad(x))


class Residual(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.a, self.na = Conv(c, c, 3), nn.InstanceNorm2d(c, affine=True)
        self.b, self.nb = Conv(c, c, 3), nn.InstanceNorm2d(c, affine=True)

    def forward(self, x):
        return x + self.nb(self.b(F.relu(self.na(self.a(x)))))


class TransformerNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.n1 = Conv(3, 32, 9), nn.InstanceNorm2d(32, affine=True)
        self.c2, self.n2 = Conv(32, 64, 3, 2), nn.InstanceNorm2d(64, affine=True)
        self.c3, self.n3 = Conv(64, 128, 3, 2), nn.InstanceNorm2d(128, affine=True)
        self.res = nn.Sequential(*[Residual(128) for _ in range(5)])
        self.u1, self.nu1 = Conv(128, 64, 3, upsample=2), nn.InstanceNorm2d(64, affine=True)
        self.u2, self.nu2 = Conv(64, 32, 3, upsample=2), nn.InstanceNorm2d(32, affine=True)
        self.out = Conv(32, 3, 9)

    def forward(self, x):
        x = F.relu(self.n1(self.c1(x)))
        x = F.relu(self.n2(self.c2(x)))
        x = F.relu(self.n3(self.c3(x)))
        x = self.res(x)
        x = F.relu(self.nu1(self.u1(x)))
        x = F.relu(self.nu2(self.u2(x)))
        return self.out(x)


def main():
    out, inp, res, h, w = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    torch.manual_seed(0)
    net = TransformerNet().eval()
    with torch.no_grad():
        # Instance norm affine parameters start at 1 and 0; give them values so that they matter.
        for m in net.modules():
            if isinstance(m, nn.InstanceNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = net(x)
    torch.onnx.export(net, x, out, opset_version=11, input_names=["image"], output_names=["stylized"],
                      dynamic_axes={"image": {2: "h", 3: "w"}, "stylized": {2: "h", 3: "w"}})
    x.numpy().astype(np.float32).tofile(inp)
    y.numpy().astype(np.float32).tofile(res)


if __name__ == "__main__":
    main()
