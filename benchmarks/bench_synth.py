"""Stage-1 generator benchmark: generation time, identity kept and variety of a synthetic set (`--backend`).

    nice -n 10 env OMP_NUM_THREADS=1 python benchmarks/bench_synth.py --people 12 --out /tmp/bench_synth.json
    python benchmarks/bench_synth.py --time-only
    python benchmarks/bench_synth.py --backend 3dmm --people 12          # the dense 3D face model (03a_face3d)

Evaluation people: LFW people with >= 10 photos (never in the transfer bank, which uses people with 2-9
photos), `--people` of them drawn with `--seed`. Photo 0 is the user's photo, photos 1.. the person's real
other photos. Reported: the time of `generate(n)` on the CPU (after one warm-up) and of `prepare`; under
EdgeFace-XS (a model neither the generator nor the cloak's surrogates use) the mean cosine of the synthetic
images and of the real other photos (up to 15) to photo 0 ("identity kept"), the mean pairwise 1 - cos of
the synthetic images and of the first n real ones (variety), and the spread of a landmark yaw estimate. Prints one JSON object. What the set does for protection is
measured in experiments/stage1.md (with `learn_mask`) and experiments/synth_standin.py (a minimal loop).
"""
import argparse, json, time, sys
import numpy as np, torch
from facecloak.assets import lfw_people
from facecloak.models import load_model
from facecloak.synth import prepare, finish, generate, load_bank, TransferBank, five_points


def yaw_proxy(img):
    "Horizontal nose offset from the eye midpoint, in inter-ocular distances (PFLD on the aligned image)."
    fc = prepare(img, device='cpu'); p = five_points(fc.lm)
    return float((p[2, 0] - (p[0, 0] + p[1, 0]) / 2) / np.linalg.norm(p[1] - p[0]))


def _kw(backend, bank, opts=None):
    return {**(dict(backend=backend, bank=bank) if backend == 'offline' else dict(backend=backend)), **(opts or {})}


def timing(photo, n, bank, backend='offline', opts=None) -> dict:
    "Seconds of `generate(photo, n)` (after a warm-up) and of `prepare(photo)` on the CPU."
    fc0 = prepare(photo, device='cpu')
    generate(fc0, 2, seed=0, device='cpu', **_kw(backend, bank, opts))
    t = time.perf_counter(); generate(fc0, n, seed=1, device='cpu', **_kw(backend, bank, opts)); gen = time.perf_counter() - t
    t = time.perf_counter(); prepare(photo, device='cpu'); prep = time.perf_counter() - t
    return dict(gen_seconds_n=gen, prepare_seconds=prep, threads=torch.get_num_threads())


@torch.no_grad()
def identity_and_variety(names, photos, n, seed, bank, backend='offline', opts=None) -> dict:
    "Identity kept, variety and yaw spread of the synthetic set against the person's real photos (EdgeFace-XS)."
    judge = load_model('edgeface_xs', device='cpu')
    idk, variety, pose = dict(synth=[], real=[]), dict(synth=[], real=[]), dict(synth=[], real=[])
    pw = lambda e: float(1 - (e @ e.T)[~torch.eye(len(e), dtype=bool)].mean())
    for pi, nm in enumerate(names):
        fcs = [prepare(p, device='cpu') for p in photos[nm][:16]]      # up to 15 real other photos
        real = torch.cat([finish(f) for f in fcs])
        syn = generate(fcs[0], n, seed=seed + pi, device='cpu', **_kw(backend, bank, opts)).images
        e_src, e_syn, e_real = judge(real[:1]), judge(syn[1:]), judge(real[1:])
        idk['synth'].append(float((e_syn @ e_src.T).mean())); idk['real'].append(float((e_real @ e_src.T).mean()))
        variety['synth'].append(pw(e_syn)); variety['real'].append(pw(e_real[:n]))
        pose['synth'].append(float(np.std([yaw_proxy(x[None]) for x in syn[1:]])))
        pose['real'].append(float(np.std([yaw_proxy(x[None]) for x in real[1:n + 1]])))
        print(nm, 'identity kept', round(idk['synth'][-1], 3), 'real', round(idk['real'][-1], 3), file=sys.stderr, flush=True)
    mean = lambda d: {k: float(np.mean(v)) for k, v in d.items()}
    return dict(identity_cos_to_source_edgeface_xs=mean(idk), variety_mean_pairwise_1mcos=mean(variety), yaw_proxy_std=mean(pose))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--people', type=int, default=10); ap.add_argument('--n', type=int, default=8)
    ap.add_argument('--seed', type=int, default=0); ap.add_argument('--bank', default='auto', help="'auto', 'none' or a bank file")
    ap.add_argument('--backend', default='offline', help="synth backend: 'offline' or '3dmm'")
    ap.add_argument('--out', default=None); ap.add_argument('--time-only', action='store_true')
    ap.add_argument('--set', action='append', default=[], metavar='KEY=VALUE',
                    help="a keyword of the backend (Python literal), e.g. --set max_yaw=30; repeatable")
    a = ap.parse_args(argv)
    import ast
    opts = {k: ast.literal_eval(v) for k, _, v in (kv.partition('=') for kv in a.set)}
    torch.manual_seed(a.seed)
    if a.backend != 'offline': a.bank = 'none'            # only the offline generator uses the transfer bank
    bank = load_bank() if a.bank == 'auto' else (None if a.bank == 'none' else TransferBank.load(a.bank))
    ppl10 = lfw_people(min_photos=10)
    names = sorted(np.random.default_rng(a.seed).choice(sorted(ppl10), size=a.people, replace=False))
    res = dict(config=vars(a), bank_pairs=len(bank) if bank is not None else 0, **timing(ppl10[names[0]][0], a.n, bank, a.backend, opts))
    if not a.time_only:
        res.update(identity_and_variety(names, ppl10, a.n, a.seed, bank, a.backend, opts), people=[str(x) for x in names])
    s = json.dumps(res)
    if a.out: open(a.out, 'w').write(s)
    print(s); return res


if __name__ == '__main__': main()
