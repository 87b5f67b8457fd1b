"""Does the leakage weighting matter? Protection at equal epsilon with it on and off.

For LFW 'eval' people (ten or more photos), a mask is learnt from photo 1 with
`facecloak.cloak.learn_mask` at the same epsilon, once per `--floors` value of `leak_floor`
(0.5: the default leakage-weighted budget; 1.0: a uniform budget, weighting off), applied to the
person's photos 7 and on, and scored with the lead's protocol (`facecloak.evaluate`): top-1
identification against a gallery of the person's photo 2 plus distractor people, verification at the
1e-3 false-accept threshold, per recognition model, and the image quality of the face (PSNR, SSIM).

Results per (person, floor) are cached in $FACECLOAK_CACHE_DIR/bench_leakage/ so an interrupted run
resumes. Prints one JSON object: the settings, the summary per floor and the paired per-person
differences.

    nice -n 10 env OMP_NUM_THREADS=1 python benchmarks/bench_leakage.py --people 10
"""
import argparse, hashlib, json, os, sys, time
from pathlib import Path

import numpy as np
import torch


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--people', type=int, default=10)
    ap.add_argument('--epsilon', type=float, default=8.0, help='L-inf budget in 1/255 units')
    ap.add_argument('--floors', type=float, nargs='+', default=[0.5, 1.0], help='leak_floor values (1.0 = uniform)')
    ap.add_argument('--off-epsilon', type=float, default=None,
                    help='epsilon (1/255) of the last floor (the uniform condition), default --epsilon: set it lower to '
                         'compare at equal image quality (PSNR) instead of equal epsilon')
    ap.add_argument('--steps', type=int, default=None, help='learn_mask steps (default: its own)')
    ap.add_argument('--leak-method', default=None, help="learn_mask leak_method ('saliency' or 'ig')")
    ap.add_argument('--max-probes', type=int, default=6)
    ap.add_argument('--distractors', type=int, default=300)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--device', default=None)
    ap.add_argument('--no-cache', action='store_true')
    a = ap.parse_args(argv)

    from facecloak import evaluate as E
    from facecloak.assets import cache_dir
    from facecloak.models import load_model, TARGETS, SURROGATES
    import facecloak.cloak  # noqa: F401  (fails here, clearly, when the cloak module is missing)

    dev = a.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    eps_of = {f: a.epsilon for f in a.floors}
    if a.off_epsilon is not None: eps_of[a.floors[-1]] = a.off_epsilon
    extra = {k: v for k, v in dict(steps=a.steps, leak_method=a.leak_method).items() if v is not None}
    subs = E.subjects(a.people, max_probes=a.max_probes, seed=a.seed)
    models = {n: load_model(n, device=dev) for n in TARGETS}
    gallery = E.Gallery(models, subs, n_distractors=a.distractors, seed=a.seed)
    cdir = cache_dir()/'bench_leakage'; cdir.mkdir(parents=True, exist_ok=True)
    records, t0 = [], time.time()
    for floor in a.floors:
        name = f'leak_floor={floor:g}'
        E.METHODS[name] = lambda s, e, sur, d, f=floor: E._learn(s, e, sur, d, leak_floor=f, seed=a.seed, **extra)
        for s in subs:
            key = json.dumps([s.name, name, eps_of[floor], extra, a.max_probes, a.distractors, a.seed, str(dev)])
            f = cdir/f'{hashlib.sha1(key.encode()).hexdigest()[:16]}.json'
            if f.exists() and not a.no_cache: recs = json.loads(f.read_text())
            else:
                t1 = time.time()
                recs = E.evaluate_subject(s, name, eps_of[floor] / 255, targets=TARGETS, surrogates=None, gallery=gallery, models=models,
                                          lpips_net=None, device=dev)
                f.write_text(json.dumps(recs))
                print(f'{s.name} {name} eps {eps_of[floor]:g}: {time.time() - t1:.0f}s', file=sys.stderr, flush=True)
            for r in recs: r['floor'] = floor
            records += recs

    P = [r for r in records if r['kind'] == 'protection' and r['condition'] == 'clean']
    Q = [r for r in records if r['kind'] == 'quality']
    black = [t for t in TARGETS if t not in SURROGATES]
    summary = {}
    for floor in a.floors:
        p = [r for r in P if r['floor'] == floor]; q = [r for r in Q if r['floor'] == floor]
        row = {'per_target_top1': {t: round(float(np.mean([r['top1'] for r in p if r['target'] == t])), 4) for t in TARGETS}}
        for k in ('top1', 'top5', 'ver_far1e-3', 'sim'):
            v = [r[k] for r in p if k in r]
            vb = [r[k] for r in p if k in r and r['target'] in black]
            if v: row[f'{k}_all'] = round(float(np.mean(v)), 4)
            if vb: row[f'{k}_blackbox'] = round(float(np.mean(vb)), 4)
        for k in ('psnr_face', 'ssim_face', 'psnr', 'ssim', 'learn_s'):
            v = [r[k] for r in q if isinstance(r.get(k), float)]
            if v: row[k] = round(float(np.mean(v)), 4)
        summary[f'leak_floor={floor:g}'] = dict(epsilon=eps_of[floor], **row)
    paired = {}
    if len(a.floors) >= 2:
        f_on, f_off = a.floors[0], a.floors[-1]
        def per_person(floor, k, targets):
            return {s.name: float(np.mean([r[k] for r in P if r['floor'] == floor and r['person'] == s.name and r['target'] in targets]))
                    for s in subs}
        # top1 (protection rate): higher is better; sim (probe-to-own-gallery cosine): lower is better
        for k, sign in (('top1', 1), ('sim', -1)):
            for label, targets in (('all', TARGETS), ('blackbox', black)):
                on, off = per_person(f_on, k, targets), per_person(f_off, k, targets)
                d = np.array([on[n] - off[n] for n in on])
                paired[f'{k}_{label}'] = dict(mean_diff_on_minus_off=round(float(d.mean()), 4),
                                              sem=round(float(d.std(ddof=1) / np.sqrt(len(d))), 4) if len(d) > 1 else None,
                                              on_better=int((sign * d > 0).sum()), off_better=int((sign * d < 0).sum()),
                                              ties=int((d == 0).sum()))
    print(json.dumps(dict(benchmark='leakage_weighting', people=[s.name for s in subs], epsilon=eps_of, floors=a.floors,
                          learn_kw=extra, targets=TARGETS, surrogates=SURROGATES, blackbox=black, probes_per_person=a.max_probes,
                          distractors=a.distractors, device=str(dev), seconds=round(time.time() - t0, 1),
                          summary=summary, paired=paired), indent=1))


if __name__ == '__main__':
    main()
