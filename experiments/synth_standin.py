"""Stage 1 with a stand-in learner: black-box protection of a person's *other* real photos by a universal
mask learned, with a minimal PGD loop (not `learn_mask`), from (a) the single photo, (b) the photo + n
offline synthetic images, (d) five real photos. Written up in experiments/stage1.md ("a minimal loop").

    nice -n 10 env OMP_NUM_THREADS=1 python experiments/synth_standin.py --people 12 --steps 40 --out /tmp/standin.json

Protocol. Evaluation people: LFW people with >= 10 photos (never in the transfer bank, which uses people with
2-9 photos), `--people` of them drawn with `--seed`. Photo 0 is the user's photo; photos 1-4 are the extra real
photos of condition (d); photos 5..15 are the test photos nobody learned from. A universal mask (L_inf <= eps,
PGD on the mean cosine similarity of each training image to its clean embedding, an ensemble of the three
surrogates, +-3 px random shifts each step) is learned per condition and added to every test photo.
Black-box targets (never used by the generator or as surrogates): edgeface_xs and mobilefacenet_paddlex.
Identification: gallery = the mean clean embedding of photos 0-4 of every evaluation person plus one photo of each
of `--distractors` LFW people with fewer than 10 photos; protection = fraction of protected test photos whose top-1
gallery match is not the person. Prints one JSON object.
"""
import argparse, json, sys
import numpy as np, torch, torch.nn.functional as F
from facecloak.assets import lfw_people
from facecloak.models import load_model, SURROGATES
from facecloak.synth import prepare, finish, generate, load_bank, TransferBank


def minimal_mask(images, models, eps=8/255, steps=40, alpha=1/255, seed=0):
    "A minimal universal-mask loop (stand-in for facecloak.cloak.learn_mask): PGD minimising cos-sim to clean."
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad(): clean = [m(images) for m in models]
    delta = torch.zeros(1, 3, 112, 112, requires_grad=True)
    for _ in range(steps):
        dx, dy = [int(v) for v in torch.randint(-3, 4, (2,), generator=g)]
        x = (torch.roll(images, (dy, dx), (2, 3)) + delta).clamp(0, 1)
        # clean targets of the shifted images: embeddings barely move under +-3 px, so the unshifted ones are used
        loss = sum((m(x) * c).sum(1).mean() for m, c in zip(models, clean)) / len(models)
        loss.backward()
        with torch.no_grad():
            delta -= alpha * delta.grad.sign(); delta.clamp_(-eps, eps); delta.grad = None
    return delta.detach()


def embed(m, x): return torch.cat([m(x[i:i + 32]) for i in range(0, len(x), 32)])


@torch.no_grad()
def gallery(targets, names, data, rng, n_distractors) -> dict:
    "Per target: unit gallery embeddings, the evaluation people (mean of photos 0-4) first, then one photo per distractor."
    small = sorted(k for k, v in lfw_people(min_photos=1).items() if len(v) < 10)
    dis = [lfw_people()[k][0] for k in sorted(rng.choice(small, size=n_distractors, replace=False))]
    dis_img = torch.cat([finish(prepare(p, device='cpu')) for p in dis])
    return {m: F.normalize(torch.cat([torch.stack([F.normalize(embed(t, data[nm]['real'][:5]).mean(0), dim=0) for nm in names]),
                                      embed(t, dis_img)]), dim=1) for m, t in targets.items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--people', type=int, default=10); ap.add_argument('--n', type=int, default=8)
    ap.add_argument('--steps', type=int, default=40); ap.add_argument('--eps', type=float, default=8/255)
    ap.add_argument('--seed', type=int, default=0); ap.add_argument('--bank', default='auto', help="'auto', 'none' or a bank file")
    ap.add_argument('--distractors', type=int, default=100); ap.add_argument('--out', default=None)
    a = ap.parse_args(argv)
    torch.manual_seed(a.seed)
    bank = load_bank() if a.bank == 'auto' else (None if a.bank == 'none' else TransferBank.load(a.bank))
    ppl10 = lfw_people(min_photos=10)
    rng = np.random.default_rng(a.seed)
    names = sorted(rng.choice(sorted(ppl10), size=a.people, replace=False))
    surr = [load_model(m, device='cpu') for m in SURROGATES]
    targets = {m: load_model(m, device='cpu') for m in ['edgeface_xs', 'mobilefacenet_paddlex']}
    data = {}
    for nm in names:
        fcs = [prepare(p, device='cpu') for p in ppl10[nm][:16]]
        data[nm] = dict(fc=fcs[0], real=torch.cat([finish(f) for f in fcs]))
    gal = gallery(targets, names, data, rng, a.distractors)
    conds = dict(a_single=[], b_synth=[], d_real5=[], none=[])
    for pi, nm in enumerate(names):
        real, fc = data[nm]['real'], data[nm]['fc']
        syn = generate(fc, a.n, seed=a.seed + pi, bank=bank, device='cpu').images
        sets = dict(a_single=real[:1], b_synth=syn, d_real5=real[:5])
        for c in conds:
            delta = torch.zeros(1, 3, 112, 112) if c == 'none' else minimal_mask(sets[c], surr, a.eps, a.steps, seed=a.seed)
            xt = (real[5:] + delta).clamp(0, 1)
            with torch.no_grad():
                conds[c].append({m: float(((embed(t, xt) @ gal[m].T).argmax(1) != pi).float().mean()) for m, t in targets.items()})
        print(nm, {c: conds[c][-1] for c in conds}, file=sys.stderr, flush=True)
    mean = lambda rows, m: float(np.mean([r[m] for r in rows]))
    res = dict(config=vars(a), bank_pairs=len(bank) if bank is not None else 0, people=[str(x) for x in names],
               protection_top1={c: {m: mean(rows, m) for m in targets} for c, rows in conds.items()},
               protection_per_person=conds,
               b_beats_a_people={m: int(sum(b[m] > x[m] for b, x in zip(conds['b_synth'], conds['a_single']))) for m in targets})
    s = json.dumps(res)
    if a.out: open(a.out, 'w').write(s)
    print(s); return res


if __name__ == '__main__': main()
