"""Levers that measured no gain, out of the library and still runnable: `import plugins` registers them.

Each was built into the learner, measured on the development split (paired over >= 24 people) and, where the
issue asked, once on the test split; none moved black-box protection beyond its standard error, so the library
keeps only the registries they plug into (`TRANSFORMS`, `LOSS_TERMS`, `LEARN_HOOKS` with `ALIASES`). Importing this
file puts them back, under the names and option spellings the records used, so every command in experiments/*.md
re-runs as recorded, e.g.

    facecloak eval --plugins experiments/plugins.py --methods 'facecloak[model_dropout=0.1,model_dropout_depth=0.7]' ...

| lever | how it is switched on | where it was measured |
|---|---|---|
| block shuffle, SIA, elastic, value scaling, admix | `diversity=+bsr` (`+sia`, `+elastic`, `+scale`, `+admix`) | levers.md, transfer.md, test_split.md |
| model dropout | `model_dropout=p, model_dropout_depth=d` (hook `model_dropout`) | levers.md, test_split.md |
| a pull toward the start | `pull=w` (hook `pull`) | levers.md |
| a perceptual (JND) cap | `perceptual=p` (hook `perceptual`) | fullres.md |
| the leakage cap ε·w | `leak_cap=True` (hook `leak_cap`; with `leakage_weight > 0`) | leakage.md |
| a feature-level term | `feature=w, feature_depth=d` (hook `feature`; the records' `extra_losses={"feature": w}`) | levers.md |
| a rank term over the crowd | `extra_losses={"rank": w}` | levers.md |
| a cosine step schedule (large first steps) | `refine_step_schedule=cosine` (`STEP_SCHEDULES['cosine']`) | steps.md |
"""
from __future__ import annotations
from contextlib import contextmanager

import math

import torch, torch.nn as nn, torch.nn.functional as F

from facecloak.core import gaussian_blur
from facecloak.cloak_transforms import TRANSFORMS, applies, random_affine
from facecloak.cloak_trainset import uniform_draws
from facecloak.cloak_objective import LOSS_TERMS
from facecloak.cloak_targets import Targets
from facecloak.cloak_config import ALIASES, LEARN_HOOKS, LearnHook
from facecloak.cloak_params import STEP_SCHEDULES


# ---- input transforms for transfer (BSR, SIA, DeCowA-style elastic, SI, Admix)
def _cuts(n: int, k: int, gen) -> list:
    "`k` random lengths, each at least about n/(2k), summing to `n`."
    w = torch.rand(k, generator=gen) + 0.5
    l = (w / w.sum() * n).floor().long(); l[-1] += n - int(l.sum())
    return l.tolist()

def block_shuffle(x, gen, p: float = 0.5, blocks: int = 2, rotate: float = 0.0):
    """BSR (Wang et al., 2024), with probability `p`: each image cut into `blocks` strips of random height and
    `blocks` of random width, the strips shuffled along each axis; then rotated by ±`rotate` degrees."""
    if not applies(p, gen): return x
    out = []
    for xi in x:
        for dim in (1, 2):
            parts = torch.split(xi, _cuts(xi.shape[dim], blocks, gen), dim=dim)
            xi = torch.cat([parts[i] for i in torch.randperm(blocks, generator=gen).tolist()], dim=dim)
        out.append(xi)
    x = torch.stack(out)
    return random_affine(x, gen, 0.0, 0.0, rotate) if rotate else x

_SIA_OPS = (lambda b, u: b, lambda b, u: b.flip(-1), lambda b, u: b.flip(-2), lambda b, u: b * (0.5 + 0.5 * u),
            lambda b, u: b + 0.06 * (u - 0.5), lambda b, u: F.interpolate(F.interpolate(b[None], scale_factor=0.5,
            mode='bilinear', antialias=True), size=b.shape[-2:], mode='bilinear')[0], lambda b, u: b.flip(-1, -2))

def structure_invariant(x, gen, p: float = 0.5, blocks: int = 3):
    """SIA (Wang et al., 2023), with probability `p`: each image cut into `blocks`×`blocks` tiles and one random
    simple transform per tile (none, flips, value scaling, a shift of brightness, down-and-up sampling, rotation by 180°)."""
    if not applies(p, gen): return x
    n, _, h, w = x.shape
    ys, xs = [round(h * i / blocks) for i in range(blocks + 1)], [round(w * i / blocks) for i in range(blocks + 1)]
    ops = torch.randint(len(_SIA_OPS), (n, blocks, blocks), generator=gen).tolist()
    u = torch.rand(n, blocks, blocks, generator=gen).tolist()
    rows = []
    for k in range(n):
        rows.append(torch.cat([torch.cat([_SIA_OPS[ops[k][i][j]](x[k, :, ys[i]:ys[i + 1], xs[j]:xs[j + 1]], u[k][i][j])
                                          for j in range(blocks)], dim=-1) for i in range(blocks)], dim=-2))
    return torch.stack(rows)

def elastic(x, gen, p: float = 0.5, alpha: float = 2.0, grid: int = 4):
    """A smooth random deformation, with probability `p` (the random form of DeCowA's elastic warps): displacements
    in ±`alpha` pixels drawn on a `grid`×`grid` lattice, upsampled bicubically."""
    if not applies(p, gen): return x
    n, _, h, w = x.shape
    d = F.interpolate((torch.rand(n, 2, grid, grid, generator=gen) * 2 - 1) * alpha, (h, w), mode='bicubic', align_corners=True)
    base = F.affine_grid(torch.eye(2, 3)[None].expand(n, 2, 3), (n, 1, h, w), align_corners=False)
    g = base + (d.permute(0, 2, 3, 1) * torch.tensor([2 / w, 2 / h])).to(x)
    return F.grid_sample(x, g.to(x), mode='bilinear', padding_mode='reflection', align_corners=False)

def intensity_scale(x, gen, p: float = 0.5, low: float = 0.5):
    "Scale invariance (SI-FGSM, Lin et al., 2020), with probability `p`: each image's values times a factor in [`low`, 1]."
    if not applies(p, gen): return x
    return x * uniform_draws(x.shape[0], gen)(low, 1.0).view(-1, 1, 1, 1).to(x)

def admix(x, gen, p: float = 0.5, eta: float = 0.2):
    """Admix (Wang et al., 2021), with probability `p`: each image plus `eta` times another image of the batch
    (a random other one), so the gradient sees pixels of the other variations."""
    if not applies(p, gen) or x.shape[0] < 2: return x
    n = x.shape[0]
    other = (torch.arange(n) + torch.randint(1, n, (n,), generator=gen)) % n
    return x + eta * x[other.to(x.device)].detach()

TRANSFORMS.update(bsr=block_shuffle, sia=structure_invariant, elastic=elastic, scale=intensity_scale, admix=admix)


# ---- a rank term over the anchor bank's identities
def rank_term(e, t: Targets, name: str, tau: float = 0.05, same: float = 0.5):
    """cos to the person's reference minus the soft maximum (temperature `tau`) of the cosines to the crowd (pushed
    down): the margin a top-1 identification turns on, so each image is moved toward the other identities nearest to
    it. Crowd identities within `same` cosine of the image's reference are the person themself and left out; None
    without a crowd."""
    if t.crowd is None: return None
    c, r = t.crowd[name], t.reference[name]
    sims = (e @ c.T).masked_fill((r @ c.T > same).expand(len(e), -1), -1.0)
    return (e * r).sum(-1) - tau * torch.logsumexp(sims / tau, dim=-1)
rank_term.crowd = True            # learn_mask resolves the crowd (every bank identity) for it

LOSS_TERMS['rank'] = rank_term


# ---- model augmentation and feature taps
def convolutions(mod: nn.Module) -> list:
    "The `nn.Conv2d` modules of `mod` in the order they were registered (about the order of the forward pass)."
    return [m for m in mod.modules() if isinstance(m, nn.Conv2d)]

def at_depth(convs: list, depth: float):
    "The convolution at relative `depth` of `convs` (0: the first, 1: the last)."
    if not convs: raise ValueError("this surrogate has no convolution to read or drop features at")
    return convs[min(len(convs) - 1, max(0, round(depth * (len(convs) - 1))))]

@contextmanager
def model_dropout(mods, p: float, depth: float = 0.0):
    """Inside the `with`: each `nn.Conv2d` of `mods` from relative `depth` on (0: all; 0.7: the last 30 %) drops its
    outputs with probability `p` (rescaled by 1/(1-p)); 0: off."""
    hooks = []
    for mod in ([] if p <= 0 else mods):
        cs = convolutions(mod); start = cs.index(at_depth(cs, depth))
        hooks += [m.register_forward_hook(lambda mod_, inp, out: F.dropout(out, p, training=True)) for m in cs[start:]]
    try: yield mods
    finally:
        for h in hooks: h.remove()

@contextmanager
def feature_taps(mods, depth: float = 0.5):
    """Inside the `with`: a dict {k: the latest output of the convolution at relative `depth` of `mods[k]`}."""
    out, hooks = {}, []
    for k, mod in enumerate(mods):
        hooks.append(at_depth(convolutions(mod), depth).register_forward_hook(lambda m_, i_, o, k=k: out.__setitem__(k, o)))
    try: yield out
    finally:
        for h in hooks: h.remove()

class ModelDropout(LearnHook):
    "Dropout `p` on the surrogates' convolution outputs from relative `depth` on, while the mask is learnt (DFANet, OPOM)."
    def __init__(self, p: float = 0.0, depth: float = 0.0):
        if not 0 <= p < 1: raise ValueError(f"model_dropout must be in [0, 1), got {p}")
        if not 0 <= depth <= 1: raise ValueError(f"model_dropout_depth must be in [0, 1], got {depth}")
        self.p, self.depth = p, depth
    def around(self, mods): return model_dropout(mods, self.p, self.depth)

class FeatureTerm(LearnHook):
    """`weight` × the cosine of one middle layer's activations (relative `depth`) of the masked batch to those of the
    same clean batch under the same transforms (pushed down): a feature-level objective (FDA, ILA, FIA)."""
    def __init__(self, weight: float = 0.0, depth: float = 0.5):
        if not 0 <= depth <= 1: raise ValueError(f"feature_depth must be in [0, 1], got {depth}")
        self.weight, self.depth, self.clean = weight, depth, None
    def around(self, mods):
        @contextmanager
        def held():
            with feature_taps(mods, self.depth) as taps: self.taps = taps; yield
        return held()
    @torch.no_grad()
    def before_batch(self, mods, x, gen, transforms):
        if not self.weight: return
        from facecloak.cloak_transforms import diversify
        state = gen.get_state()
        xt = diversify(x, gen, transforms) if transforms else x
        for m in mods: m(xt)
        gen.set_state(state)           # the masked batch draws the same transforms
        self.clean = [self.taps[k].detach() for k in range(len(mods))]
    def loss(self, d, idx, window):
        if not self.weight: return 0.
        cs = [F.cosine_similarity(self.taps[k].flatten(1).float(), c.flatten(1).float(), dim=1) for k, c in enumerate(self.clean)]
        return self.weight * sum(c.view(-1, len(idx)).mean(0).mean() for c in cs) / len(cs)

def pull_term(delta, start, epsilon: float) -> torch.Tensor:
    "Mean ((δ − δ₀)/ε)²: how far the mask `delta` has moved from where it started (`start` broadcasts); 0 at the start."
    return ((delta - start) / epsilon).pow(2).mean()

class Pull(LearnHook):
    "`weight` × `pull_term`: holds δ near where learning started (the prior), the alternative to only starting from it."
    def __init__(self, weight: float = 0.0):
        if weight < 0: raise ValueError(f"pull must be >= 0, got {weight}")
        self.weight = weight
    def begin(self, policy, x_set, cfg):
        self.eps = cfg.epsilon
        self.start = policy.delta(torch.arange(len(x_set), device=x_set.device)).detach().clone() if self.weight else None
    def loss(self, d, idx, window):
        if not self.weight: return 0.
        s = self.start if len(self.start) == 1 else self.start[idx]
        return self.weight * pull_term(d, window * s, self.eps)


# ---- caps: a perceptual (JND) map, and the leakage cap
def jnd_map(x, window: float = 1.5) -> torch.Tensor:
    """(N,1,H,W) just-noticeable difference in 8-bit grey levels of images `x` (N,3,H,W) in [0,1]: the larger of
    Chou & Li's luminance threshold on the local mean and a texture threshold from the local contrast (std of
    luminance over a Gaussian `window` of σ px)."""
    y = 255 * (0.299 * x[:, :1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])
    bg = gaussian_blur(y, window)
    lum = torch.where(bg <= 127, 17 * (1 - (bg.clamp(min=0) / 127).sqrt()) + 3, 3 / 128 * (bg - 127) + 3)
    yc, bgc = y - 128, bg - 128         # centred: E[y²] − E[y]² in float32 loses ~0.05 levels to cancellation at mid-grey
    contrast = (gaussian_blur(yc * yc, window) - bgc * bgc).clamp(min=0).sqrt()
    return torch.maximum(lum, 3 + contrast)

def perceptual_weights(x, perceptual: float, *, top: float = 0.9) -> torch.Tensor:
    """(1,1,H,W) cap factor in [1 - `perceptual`, 1] from the mean `jnd_map` of aligned images `x`: 1 where the
    threshold reaches its `top` quantile, falling linearly with it to 1 - `perceptual` where it is 0."""
    if not 0 <= perceptual <= 1: raise ValueError(f"perceptual must be in [0, 1], got {perceptual}")
    j = jnd_map(x).mean(0, keepdim=True)
    r = (j / torch.quantile(j.flatten(), top).clamp(min=1e-6)).clamp(0, 1)
    return (1 - perceptual) + perceptual * r

class PerceptualCap(LearnHook):
    "The cap times `perceptual_weights` of the user's aligned photo: ε·[1 − p, 1], less on flat skin."
    def __init__(self, p: float = 0.0):
        if not 0 <= p <= 1: raise ValueError(f"perceptual must be in [0, 1], got {p}")
        self.p = p
    def cap(self, cap, weight, x_set): return cap * perceptual_weights(x_set[:1], self.p).to(cap) if self.p else cap

class LeakCap(LearnHook):
    "The cap lowered to ε·w, the leakage step weight (the first design; it spends less budget)."
    def __init__(self, on: bool = False): self.on = bool(on)
    def cap(self, cap, weight, x_set): return cap * weight.to(cap) if self.on else cap

LEARN_HOOKS.update(model_dropout=ModelDropout, feature=FeatureTerm, pull=Pull, perceptual=PerceptualCap, leak_cap=LeakCap)
ALIASES.update(model_dropout=('model_dropout', 'p'), model_dropout_depth=('model_dropout', 'depth'),
               feature=('feature', 'weight'), feature_depth=('feature', 'depth'), pull=('pull', 'weight'),
               perceptual=('perceptual', 'p'), leak_cap=('leak_cap', 'on'))


# ---- a step schedule for MI-FGSM: α at the first step, then half a cosine down towards 0 (steps.md: no gain)
def cosine_schedule(t: int, n: int) -> float:
    "The factor on α at step `t` of `n`: 1 at the first, falling along half a cosine towards 0 at the last."
    return 0.5 * (1 + math.cos(math.pi * t / max(n, 1)))

STEP_SCHEDULES['cosine'] = cosine_schedule
