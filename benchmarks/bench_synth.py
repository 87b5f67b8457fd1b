"""Stage-1 synthesis benchmark: generation time, identity kept, variety, and the point of it all —
black-box protection of a person's *other* real photos by a universal mask learned from
(a) the single photo, (b) the photo + n offline synthetic images, (d) several real photos.

    nice -n 10 env OMP_NUM_THREADS=1 python benchmarks/bench_synth.py --people 10 --steps 40 --out /tmp/bench_synth.json

Protocol. Evaluation people: LFW people with >= 10 photos (never in the transfer bank, which uses people with
2-9 photos), `--people` of them drawn with `--seed`. Photo 0 is the user's photo; photos 1-4 are the extra real
photos of condition (d); photos 5.. are the test photos nobody learned from. A universal mask (L_inf <= eps,
PGD on the mean cosine similarity of each training image to its clean embedding, an ensemble of the three
surrogates, +-3 px random shifts each step) is learned per condition and added to every test photo.
Black-box targets (never used by the generator or as surrogates): edgeface_xs and mobilefacenet_paddlex.
Identification: gallery = the mean clean embedding of photos 0-4 of every evaluation person plus one photo of each
transfer-bank-disjoint distractor; protection = fraction of protected test photos whose top-1 gallery match is
not the person. Prints one JSON object.
"""
import argparse, json, time, sys
import numpy as np, torch, torch.nn.functional as F
from facecloak.assets import lfw_people, cache_dir
from facecloak.synth import prepare, finish, generate, load_bank, TransferBank, FaceCanvas, five_points

def minimal_mask(images, models, eps=8/255, steps=40, alpha=1/255, seed=0):
    "A minimal universal-mask loop (stand-in for facecloak.cloak.learn_mask): PGD minimising cos-sim to clean."
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad(): clean = [m(images) for m in models]
    delta = torch.zeros(1, 3, 112, 112, requires_grad=True)
    for _ in range(steps):
        dx, dy = [int(v) for v in torch.randint(-3, 4, (2,), generator=g)]
        x = (torch.roll(images, (dy, dx), (2, 3)) + delta).clamp(0, 1)
        loss = sum((m(x) * c).sum(1).mean() for m, c in zip(models, clean)) / len(models)
        # clean targets of the shifted images: embeddings barely move under +-3 px, so the unshifted ones are used
        loss.backward()
        with torch.no_grad():
            delta -= alpha * delta.grad.sign(); delta.clamp_(-eps, eps); delta.grad = None
    return delta.detach()

def yaw_proxy(img):
    "Horizontal nose offset from the eye midpoint, in inter-ocular distances (PFLD on the aligned image)."
    fc = prepare(img, device='cpu'); p = five_points(fc.lm)
    return float((p[2, 0] - (p[0, 0] + p[1, 0]) / 2) / np.linalg.norm(p[1] - p[0]))

def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument('--people', type=int, default=10); ap.add_argument('--n', type=int, default=8)
    ap.add_argument('--steps', type=int, default=40); ap.add_argument('--eps', type=float, default=8/255)
    ap.add_argument('--seed', type=int, default=0); ap.add_argument('--bank', default='auto')
    ap.add_argument('--distractors', type=int, default=100); ap.add_argument('--out', default=None)
    ap.add_argument('--time-only', action='store_true')
    a = ap.parse_args(argv)
    torch.manual_seed(a.seed)
    bank = load_bank() if a.bank == 'auto' else (None if a.bank == 'none' else TransferBank.load(a.bank))
    res = dict(config=vars(a), bank_pairs=len(bank) if bank is not None else 0)
    ppl10 = lfw_people(min_photos=10)
    rng = np.random.default_rng(a.seed)
    names = sorted(rng.choice(sorted(ppl10), size=a.people, replace=False))
    # ---- generation time, n images on CPU (one warm-up)
    fc0 = prepare(ppl10[names[0]][0], device='cpu')
    generate(fc0, 2, seed=0, bank=bank, device='cpu')
    t = time.perf_counter(); generate(fc0, a.n, seed=1, bank=bank, device='cpu'); res['gen_seconds_n'] = time.perf_counter() - t
    t = time.perf_counter(); prepare(ppl10[names[0]][0], device='cpu'); res['prepare_seconds'] = time.perf_counter() - t
    res['threads'] = torch.get_num_threads()
    if a.time_only: print(json.dumps(res)); return res
    from facecloak.models import load_model, SURROGATES
    surr = [load_model(m, device='cpu') for m in SURROGATES]
    targets = {m: load_model(m, device='cpu') for m in ['edgeface_xs', 'mobilefacenet_paddlex']}
    judge = targets['edgeface_xs']
    emb = lambda m, x: torch.cat([m(x[i:i + 32]) for i in range(0, len(x), 32)])
    # ---- data: aligned photos of the evaluation people, distractors disjoint from them
    data = {}
    for nm in names:
        fcs = [prepare(p, device='cpu') for p in ppl10[nm][:16]]
        data[nm] = dict(fc=fcs[0], real=torch.cat([finish(f) for f in fcs]))
    small = sorted(k for k, v in lfw_people(min_photos=1).items() if len(v) < 10)
    dis = [lfw_people()[k][0] for k in sorted(rng.choice(small, size=a.distractors, replace=False))]
    dis_img = torch.cat([finish(prepare(p, device='cpu')) for p in dis])
    gal = {m: F.normalize(torch.cat([torch.stack([F.normalize(emb(t, data[nm]['real'][:5]).mean(0), dim=0) for nm in names]),
                                     emb(t, dis_img)]), dim=1) for m, t in targets.items()}
    conds = dict(a_single=[], b_synth=[], d_real5=[], none=[])
    idk, variety, pose = dict(synth=[], real=[]), dict(synth=[], real=[]), dict(synth=[], real=[])
    for pi, nm in enumerate(names):
        real, fc = data[nm]['real'], data[nm]['fc']
        syn = generate(fc, a.n, seed=a.seed + pi, bank=bank, device='cpu').images
        test = real[5:]
        with torch.no_grad():
            e_src, e_syn, e_real = judge(real[:1]), judge(syn[1:]), judge(real[1:])
            idk['synth'].append(float((e_syn @ e_src.T).mean())); idk['real'].append(float((e_real @ e_src.T).mean()))
            pw = lambda e: float(1 - (e @ e.T)[~torch.eye(len(e), dtype=bool)].mean())
            variety['synth'].append(pw(e_syn)); variety['real'].append(pw(e_real[:a.n]))
        pose['synth'].append(float(np.std([yaw_proxy(x[None]) for x in syn[1:]])))
        pose['real'].append(float(np.std([yaw_proxy(x[None]) for x in real[1:a.n + 1]])))
        sets = dict(a_single=real[:1], b_synth=syn, d_real5=real[:5])
        for c in conds:
            delta = torch.zeros(1, 3, 112, 112) if c == 'none' else minimal_mask(sets[c], surr, a.eps, a.steps, seed=a.seed)
            xt = (test + delta).clamp(0, 1)
            row = {}
            with torch.no_grad():
                for m, t in targets.items():
                    top1 = (emb(t, xt) @ gal[m].T).argmax(1)
                    row[m] = float((top1 != pi).float().mean())
            conds[c].append(row)
        print(nm, {c: conds[c][-1] for c in conds}, 'id', round(idk['synth'][-1], 3), round(idk['real'][-1], 3), file=sys.stderr, flush=True)
    mean = lambda rows, m: float(np.mean([r[m] for r in rows]))
    res['protection_top1'] = {c: {m: mean(rows, m) for m in targets} for c, rows in conds.items()}
    res['protection_per_person'] = {c: rows for c, rows in conds.items()}
    res['b_beats_a_people'] = {m: int(sum(b[m] > x[m] for b, x in zip(conds['b_synth'], conds['a_single']))) for m in targets}
    res['identity_cos_to_source_edgeface_xs'] = {k: float(np.mean(v)) for k, v in idk.items()}
    res['variety_mean_pairwise_1mcos'] = {k: float(np.mean(v)) for k, v in variety.items()}
    res['yaw_proxy_std'] = {k: float(np.mean(v)) for k, v in pose.items()}
    res['people'] = [str(x) for x in names]
    s = json.dumps(res)
    if a.out: open(a.out, 'w').write(s)
    print(s); return res

if __name__ == '__main__': main()
