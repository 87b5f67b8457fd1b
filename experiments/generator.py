"""Issue #37, part 2: a feed-forward perturbation generator (photo -> perturbation within ε in one pass), trained once
over photos of OTHER people (LFW's anchor pool, the prior's people: never an evaluated subject) against the surrogate
ensemble, measured against the refine dial on the development split.

    python experiments/generator.py train --minutes 50 --out $FACECLOAK_CACHE_DIR/generator/gen.safetensors   # resumable
    facecloak eval --plugins experiments/generator.py --methods 'generator,generator[base=mask]' ...  # an eval method
    python experiments/generator.py time --weights $FACECLOAK_CACHE_DIR/generator/gen.safetensors    # ms per face
    python experiments/generator.py look --out figures/generator_look.png                            # what it paints

The generator G is a small encoder-decoder (two stride-2 levels, three residual blocks at 28², 1.2 M parameters). Its
perturbation is δ = ε·tanh(G(x)) inside the mask's face window (region 'head'), ε = 8/255 (the project's protocol).
Training: each step a batch of other people's aligned faces, δ added, the learner's own input transforms (with an
attacker's clean-up in half the batches, as the refine dial does), each surrogate's cosine to the clean photo's own
embedding pushed down, plus the visibility term (1 - SSIM) at weight 4 as the refine dial has it. Adam, checkpoints
every few minutes (`--minutes` more each call).

Eval methods (`--plugins experiments/generator.py`, weights from `FACECLOAK_GENERATOR` or the default path above):
`generator` (δ = the generator's alone, no mask), `generator[base=mask]` (the user's learnt mask clipped to ε, plus the
generator's δ, clipped to ε). No model other than the generator runs at apply time.
"""
import argparse, os, time
from dataclasses import replace
from pathlib import Path

import torch, torch.nn as nn, torch.nn.functional as F

from facecloak import align
from facecloak.core import seeded
from facecloak.cloak_budget import mask_window
from facecloak.cloak_objective import visibility
from facecloak.cloak_transforms import diversify, input_transforms
from facecloak.cloak_config import CloakConfig
from facecloak.cloak_targets import prior_photos
from facecloak.models import embed, resolve_surrogates

EPS = 8 / 255
DEFAULT = Path(os.environ.get('FACECLOAK_GENERATOR', Path(os.environ.get('FACECLOAK_CACHE_DIR', '.')) / 'generator' / 'gen.safetensors'))


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.a, self.b = nn.Conv2d(c, c, 3, padding=1), nn.Conv2d(c, c, 3, padding=1)
    def forward(self, x): return x + self.b(F.relu(self.a(F.relu(x))))


class Generator(nn.Module):
    "Aligned face (N,3,112,112) in [0,1] -> unbounded map (N,3,112,112); δ = ε·tanh(map)."
    def __init__(self, c: int = 32, blocks: int = 3):
        super().__init__()
        self.down = nn.Sequential(nn.Conv2d(3, c, 3, padding=1), nn.ReLU(), nn.Conv2d(c, 2 * c, 4, 2, 1), nn.ReLU(),
                                  nn.Conv2d(2 * c, 4 * c, 4, 2, 1))
        self.mid = nn.Sequential(*[Block(4 * c) for _ in range(blocks)])
        self.up = nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(4 * c, 2 * c, 4, 2, 1), nn.ReLU(),
                                nn.ConvTranspose2d(2 * c, c, 4, 2, 1), nn.ReLU(), nn.Conv2d(c, 3, 3, padding=1))
    def forward(self, x): return self.up(self.mid(self.down(x * 2 - 1)))


def perturbation(gen, x, window, eps: float = EPS):
    "The generator's δ on aligned faces `x`, inside `window` and within ε."
    return eps * torch.tanh(gen(x)) * window


def pool(n: int, cache: Path) -> torch.Tensor:
    "Aligned faces of `n` people of the anchor pool (one photo each), cached."
    f = cache / f'pool{n}.pt'
    if f.exists(): return torch.load(f, weights_only=True)
    x = align.align_paths(prior_photos(n), on_missing='skip', device='cpu', progress=True)
    f.parent.mkdir(parents=True, exist_ok=True); torch.save(x, f)
    return x


def train(a):
    torch.manual_seed(0)
    out, ck = Path(a.out), Path(a.out).with_suffix('.ckpt.pt')
    x_all = pool(a.people, out.parent)
    n_val = 64
    x_val, x_tr = x_all[:n_val], x_all[n_val:]
    names, mods = resolve_surrogates(None, 'cpu')
    cfg = CloakConfig()
    window = mask_window(cfg.size, cfg.feather, cfg.region, cfg.template)
    transforms = input_transforms({**cfg.diversity, 'purify': dict(p=0.5)})
    gen = Generator(); opt = torch.optim.Adam(gen.parameters(), lr=a.lr)
    step, log = 0, []
    if ck.exists():
        s = torch.load(ck, weights_only=True)
        gen.load_state_dict(s['gen']); opt.load_state_dict(s['opt']); step = int(s['step']); log = [tuple(r) for r in s['log'].tolist()]
        print(f'resumed at step {step}')
    with torch.no_grad(): e_tr, e_val = embed(mods, x_tr), embed(mods, x_val)     # the clean photos' own identities
    print(f'{len(x_tr)} training faces, {len(x_val)} held out; surrogates {names}', flush=True)
    g = seeded(step + 1)
    t_end, t_save = time.time() + 60 * a.minutes, time.time() + 300

    def save():
        torch.save(dict(gen=gen.state_dict(), opt=opt.state_dict(), step=torch.tensor(step), log=torch.tensor(log or [[0., 0., 0.]])), ck)
        from safetensors.torch import save_file
        save_file({k: v.contiguous() for k, v in gen.state_dict().items()}, str(out), metadata=dict(step=str(step), eps=str(EPS)))

    while time.time() < t_end:
        idx = torch.randint(len(x_tr), (a.batch,), generator=g)
        x = x_tr[idx]
        d = perturbation(gen, x, window)
        xa = diversify((x + d).clamp(0, 1), g, transforms)
        cos = torch.stack([F.cosine_similarity(m(xa).float(), e[idx]).mean() for m, e in zip(mods, e_tr)]).mean()
        vis = visibility(x, d, 1.0)
        loss = cos + a.vis * vis
        opt.zero_grad(); loss.backward(); opt.step(); step += 1
        if step % 25 == 0:
            with torch.no_grad():
                dv = perturbation(gen, x_val, window)
                cv = float(torch.stack([F.cosine_similarity(m((x_val + dv).clamp(0, 1)), e).mean() for m, e in zip(mods, e_val)]).mean())
            log.append((step, float(cos.detach()), cv))
            print(f'step {step}: train cos {float(cos):.3f}, vis {float(vis):.4f}, held-out cos {cv:.3f}', flush=True)
        if time.time() > t_save: save(); t_save = time.time() + 300
    save(); print(f'saved {out} at step {step}')


def load_generator(path=None) -> Generator:
    from safetensors.torch import load_file
    p = Path(path or DEFAULT)
    if not p.exists(): raise FileNotFoundError(f'generator weights {p} not found: train them (python experiments/generator.py train)')
    gen = Generator(); gen.load_state_dict(load_file(str(p))); return gen.eval()


class GeneratorMasker:
    "An eval method: detect, align, the generator's δ (plus the user's mask clipped to ε with `base='mask'`), add."
    def __init__(self, mask, gen, base: str = 'none'):
        if base not in ('none', 'mask'): raise ValueError(f"base must be 'none' or 'mask', got {base!r}")
        self.mask, self.gen, self.base = mask, gen, base
    @property
    def surrogates(self): return self.mask.surrogates
    @torch.no_grad()
    def apply(self, photo):
        im = align.load_photo(photo)
        faces = align.detect(im)
        if not faces: raise align.NoFaceError('no face found')
        M = self.mask.matrix(self.mask.select_face(im, faces))
        crop = align.warp_face(im, M, self.mask.size)
        d = EPS * torch.tanh(self.gen(crop))        # the window is the mask's own, applied by `Mask.apply`
        base = self.mask.delta.clamp(-EPS, EPS) if self.base == 'mask' else 0
        m = replace(self.mask, delta=(base + d).clamp(-EPS, EPS), epsilon=EPS, surface=None)
        return m.apply(im, M=M, refine=0)


def register():
    from facecloak.evaluate import METHODS
    from facecloak.cloak_config import CloakConfig
    _gen = {}
    def method(s, eps, sur, dev, base='none', **kw):
        "The user's default mask (learnt as 'facecloak' at learn_mask's ε, shared with the other methods) holds the window and face."
        if abs(eps - EPS) > 1e-6: raise ValueError(f"the generator was trained at ε {EPS * 255:g}/255, not {eps * 255:g}/255: do not sweep it")
        if 'g' not in _gen: _gen['g'] = load_generator()
        return GeneratorMasker(METHODS['facecloak'](s, CloakConfig().epsilon, sur, dev, **kw), _gen['g'], base)
    METHODS['generator'] = method


def look(a):
    "A figure: three development people's first probe, aligned: the photo, with the generator's δ, and δ ×16."
    import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt
    from facecloak.evaluate import subjects
    gen, window = load_generator(a.weights), mask_window((112, 112), 6.0, CloakConfig().region, 'arcface')
    people = subjects(3, max_probes=1, seed=0, split='dev')
    fig, axs = plt.subplots(3, 3, figsize=(7.5, 7.8))
    for row, s in zip(axs, people):
        x = align.align(align.load_photo(s.probes[0])).image.cpu()
        with torch.no_grad(): d = perturbation(gen, x, window)
        for ax, im, t in zip(row, (x, (x + d).clamp(0, 1), (d * 16 + .5).clamp(0, 1)),
                             ('photo (aligned 112 px)', 'with the generator\'s δ', f'δ ×16 (mean |δ| {float(d.abs().mean() * 255):.1f} levels)')):
            ax.imshow(im[0].permute(1, 2, 0).numpy(), interpolation='nearest'); ax.set_title(t, fontsize=8); ax.axis('off')
    fig.suptitle('The generator at ε 8/255 on three development people (never trained on)', fontsize=10)
    fig.tight_layout(); fig.savefig(a.out, dpi=110); print(f'wrote {a.out}')


def time_per_face(gen, n: int = 20) -> float:
    "Milliseconds per aligned face (one at a time) of the generator's forward pass on this CPU."
    x = torch.rand(1, 3, 112, 112)
    with torch.no_grad():
        for _ in range(2): gen(x)
        t = time.perf_counter()
        for _ in range(n): gen(x)
    return 1000 * (time.perf_counter() - t) / n


def time_it(a):
    torch.set_num_threads(2)
    gen = load_generator(a.weights)
    print(dict(ms_per_face=round(time_per_face(gen), 1), params=sum(p.numel() for p in gen.parameters()), threads=torch.get_num_threads()))


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0]); sub = p.add_subparsers(dest='cmd', required=True)
    t = sub.add_parser('train'); t.add_argument('--minutes', type=float, default=40); t.add_argument('--out', default=str(DEFAULT))
    t.add_argument('--people', type=int, default=2870); t.add_argument('--batch', type=int, default=12)
    t.add_argument('--lr', type=float, default=1e-3); t.add_argument('--vis', type=float, default=4.0)
    w = sub.add_parser('time'); w.add_argument('--weights', default=None)
    l = sub.add_parser('look'); l.add_argument('--weights', default=None); l.add_argument('--out', default='figures/generator_look.png')
    a = p.parse_args()
    {'train': train, 'time': time_it, 'look': look}[a.cmd](a)
else:
    register()
