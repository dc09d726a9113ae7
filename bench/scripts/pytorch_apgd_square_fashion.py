#!/usr/bin/env python3
"""APGD-CE and the Square Attack (L-infinity) on Fashion-MNIST test images in PyTorch: the peer of
`bench ... -- autoattack`. Written from the papers (Croce and Hein 2020; Andriushchenko et al. 2020)
with the same choices as Reverie's Apgd.cs and SquareAttack.cs: APGD from a uniform random start,
step 2*eps halved per image at the checkpoints p1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03,
0.06) when fewer than 75% of the steps since the last one raised the loss (or nothing changed), momentum
0.75, an image stops once fooled; Square from vertical stripes, one window per image and query, kept
when the margin of the log-probabilities falls, the window's share halved on the paper's schedule.
Prints JSON: seconds and robust accuracy of each."""
import argparse, json, math, os, sys, time
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reverie_convnet import Normalized, fashion_test  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("checkpoint")
p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
p.add_argument("--images", type=int, default=1000)
p.add_argument("--eps", type=float, default=0.1)
p.add_argument("--steps", type=int, default=100)
p.add_argument("--queries", type=int, default=1000)
p.add_argument("--batch", type=int, default=250)
p.add_argument("--threads", type=int, default=2)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
net = Normalized(a.checkpoint)
x_all, y_all = fashion_test(a.data, a.images)


def checkpoints(n):
    w, prev, q = [], 0.0, 0.22
    while True:
        at = math.ceil(q * n - 1e-9)
        if at >= n:
            return w
        if not w or at > w[-1]:
            w.append(at)
        prev, q = q, q + max(q - prev - 0.03, 0.06)


def project(x, x0, eps):
    return torch.min(torch.max(x, x0 - eps), x0 + eps).clamp(0, 1)


def apgd(x0, y, eps, steps):
    def evaluate(x, yy):
        x = x.clone().requires_grad_(True)
        lp = F.log_softmax(net(x), 1)
        loss = -lp.gather(1, yy[:, None])[:, 0]
        g, = torch.autograd.grad(loss.sum(), [x])
        return loss.detach(), g, lp.argmax(1) != yy

    x = project(x0 + (torch.rand_like(x0) * 2 - 1) * eps, x0, eps)
    f, g, fooled = evaluate(x, y)
    adv, best_loss, x_max, g_max = x.clone(), f.clone(), x.clone(), g.clone()
    eta = torch.full((len(x0),), 2 * eps)
    inc = torch.zeros(len(x0))
    best_check, reduced = best_loss.clone(), torch.zeros(len(x0), dtype=torch.bool)
    w, last, x_prev = set(checkpoints(steps)), 0, x.clone()
    with torch.no_grad():
        for k in range(steps):
            act = (~fooled).nonzero()[:, 0]
            if len(act) == 0:
                break
            xa, ga, x0a = x[act], g[act], x0[act]
            al = 1.0 if k == 0 else 0.75
            z = project(xa + eta[act, None, None, None] * ga.sign(), x0a, eps)
            nxt = project(xa + al * (z - xa) + (1 - al) * (xa - x_prev[act]), x0a, eps)
            x_prev[act] = xa
            x[act] = nxt
            with torch.enable_grad():
                f2, g2, fo2 = evaluate(nxt, y[act])
            adv[act] = torch.where(fo2[:, None, None, None], nxt, adv[act])
            fooled[act] = fo2
            inc[act] += (f2 > f[act]).float()
            better = f2 > best_loss[act]
            x_max[act] = torch.where(better[:, None, None, None], nxt, x_max[act])
            g_max[act] = torch.where(better[:, None, None, None], g2, g_max[act])
            best_loss[act] = torch.where(better, f2, best_loss[act])
            f[act], g[act] = f2, g2
            if k + 1 in w:
                halve = (inc < 0.75 * (k + 1 - last)) | (~reduced & (best_check >= best_loss))
                eta = torch.where(halve, eta / 2, eta)
                x = torch.where(halve[:, None, None, None], x_max, x)
                g = torch.where(halve[:, None, None, None], g_max, g)
                reduced, best_check, last = halve, best_loss.clone(), k + 1
                inc.zero_()
    return torch.where(fooled[:, None, None, None], adv, x_max)


def square(x0, y, eps, budget, gen):
    n, c, h, w = x0.shape

    def margin(x, yy):
        lp = F.log_softmax(net(x), 1)
        own = lp.gather(1, yy[:, None])[:, 0]
        return own - lp.scatter(1, yy[:, None], float("-inf")).amax(1)

    def share(it):
        k = it * 10000 // budget
        for i, lim in enumerate([10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000]):
            if k <= lim:
                return p_init / (1 << i)
        return p_init / (1 << 9)

    p_init = 0.8 if h * w <= 32 * 32 else 0.05
    with torch.no_grad():
        best = project(x0 + eps * (torch.randint(0, 2, (n, c, 1, w), generator=gen).float() * 2 - 1), x0, eps)
        m = margin(best, y)
        for it in range(1, budget):
            open_ = (m >= 0).nonzero()[:, 0]
            if len(open_) == 0:
                break
            s = int(min(max(round(math.sqrt(share(it) * h * w)), 1), min(h, w) - 1))
            k = len(open_)
            tops = torch.randint(0, h - s + 1, (k, 1), generator=gen)
            lefts = torch.randint(0, w - s + 1, (k, 1), generator=gen)
            ar_h, ar_w = torch.arange(h)[None], torch.arange(w)[None]
            win = ((ar_h >= tops) & (ar_h < tops + s))[:, :, None] & ((ar_w >= lefts) & (ar_w < lefts + s))[:, None, :]
            cur, start = best[open_], x0[open_]
            signs = torch.randint(0, 2, (k, c, 1, 1), generator=gen).float() * 2 - 1
            cand = project(torch.where(win[:, None], (start + eps * signs).clamp(0, 1), cur), start, eps)
            m2 = margin(cand, y[open_])
            keep = m2 < m[open_]
            best[open_[keep]] = cand[keep]
            m[open_[keep]] = m2[keep]
    return best


def robust(attack):
    t0 = time.perf_counter()
    correct = 0
    for s in range(0, len(x_all), a.batch):
        x0, y = x_all[s:s + a.batch], y_all[s:s + a.batch]
        adv = attack(x0, y)
        with torch.no_grad():
            correct += (net(adv).argmax(1) == y).sum().item()
    return time.perf_counter() - t0, correct / len(x_all)


gen = torch.Generator().manual_seed(0)
apgd_s, apgd_acc = robust(lambda x0, y: apgd(x0, y, a.eps, a.steps))
square_s, square_acc = robust(lambda x0, y: square(x0, y, a.eps, a.queries, gen))
print(json.dumps({"images": len(x_all), "apgd_seconds": apgd_s, "apgd_robust_accuracy": apgd_acc,
                  "square_seconds": square_s, "square_robust_accuracy": square_acc, "torch": torch.__version__}))
