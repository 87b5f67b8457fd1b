"""Does the leakage weighting matter? Protection at equal epsilon with it on and off.

For LFW 'eval' people (ten or more photos), a mask is learnt from photo 1 with
`facecloak.cloak.learn_mask` at the same epsilon, once per `--leakage-weights` value
(0.5: the default leakage-weighted step; 0: a uniform step, weighting off), applied to the
person's photos 7 and on, and scored with the protocol of `facecloak.evaluate`: top-1
identification against a gallery of the person's photo 2 plus distractor people, verification at the
1e-3 false-accept threshold, per recognition model, and the image quality of the face (PSNR, SSIM).
`--leak-cap` also lowers each pixel's cap to epsilon * weight (the `leak_cap` hook of experiments/plugins.py, the earlier
design measured in experiments/leakage.md).

Results per (person, weight) are cached in $FACECLOAK_CACHE_DIR/bench_leakage/ so an interrupted run
resumes. Prints one JSON object: the settings, the summary per weight and the paired per-person
differences (first weight minus last).

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
    ap.add_argument('--leakage-weights', type=float, nargs='+', default=[0.5, 0.0],
                    help='learn_mask leakage_weight values (0 = uniform step)')
    ap.add_argument('--leak-cap', action='store_true', help='also cap each pixel at epsilon * weight (learn_mask leak_cap=True)')
    ap.add_argument('--off-epsilon', type=float, default=None,
                    help='epsilon (1/255) of the last weight (the uniform condition), default --epsilon: set it lower to '
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
    if a.leak_cap:      # the leak cap is a measured-null lever: it lives in experiments/plugins.py
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent/'experiments')); import plugins  # noqa: F401
    from facecloak.assets import cache_dir
    from facecloak.core import default_device
    from facecloak.models import load_model, TARGETS, SURROGATES

    dev = default_device(a.device)
    weights = a.leakage_weights
    eps_of = {w: a.epsilon for w in weights}
    if a.off_epsilon is not None: eps_of[weights[-1]] = a.off_epsilon
    extra = {k: v for k, v in dict(steps=a.steps, leak_method=a.leak_method, leak_cap=a.leak_cap or None).items() if v is not None}
    subs = E.subjects(a.people, max_probes=a.max_probes, seed=a.seed)
    models = {n: load_model(n, device=dev) for n in TARGETS}
    gallery = E.Gallery(models, subs, n_distractors=a.distractors, seed=a.seed)
    cdir = cache_dir()/'bench_leakage'; cdir.mkdir(parents=True, exist_ok=True)
    records, t0 = [], time.time()
    for w in weights:
        name = f'leakage_weight={w:g}'
        E.METHODS[name] = lambda s, e, sur, d, w=w: E.METHODS['facecloak'](s, e, sur, d, leakage_weight=w, seed=a.seed, **extra)
        for s in subs:
            key = json.dumps([s.name, name, eps_of[w], extra, a.max_probes, a.distractors, a.seed, str(dev)])
            f = cdir/f'{hashlib.sha1(key.encode()).hexdigest()[:16]}.json'
            if f.exists() and not a.no_cache: recs = json.loads(f.read_text())
            else:
                t1 = time.time()
                recs = E.evaluate_subject(s, name, eps_of[w] / 255, targets=TARGETS, surrogates=None, gallery=gallery, models=models,
                                          lpips_net=None, device=dev)
                f.write_text(json.dumps(recs))
                print(f'{s.name} {name} eps {eps_of[w]:g}: {time.time() - t1:.0f}s', file=sys.stderr, flush=True)
            for r in recs: r['leakage_weight'] = w
            records += recs

    P = [r for r in records if r['kind'] == 'protection' and r['condition'] == 'clean']
    Q = [r for r in records if r['kind'] == 'quality']
    black = [t for t in TARGETS if t not in SURROGATES]
    summary = {}
    for w in weights:
        p = [r for r in P if r['leakage_weight'] == w]; q = [r for r in Q if r['leakage_weight'] == w]
        row = {'per_target_top1': {t: round(float(np.mean([r['top1'] for r in p if r['target'] == t])), 4) for t in TARGETS}}
        for k in ('top1', 'top5', 'ver_far1e-3', 'sim'):
            v = [r[k] for r in p if k in r]
            vb = [r[k] for r in p if k in r and r['target'] in black]
            if v: row[f'{k}_all'] = round(float(np.mean(v)), 4)
            if vb: row[f'{k}_blackbox'] = round(float(np.mean(vb)), 4)
        for k in ('psnr_face', 'ssim_face', 'psnr', 'ssim', 'learn_s'):
            v = [r[k] for r in q if isinstance(r.get(k), float)]
            if v: row[k] = round(float(np.mean(v)), 4)
        summary[f'leakage_weight={w:g}'] = dict(epsilon=eps_of[w], **row)
    paired = {}
    if len(weights) >= 2:
        w_on, w_off = weights[0], weights[-1]
        def per_person(w, k, targets):
            return {s.name: float(np.mean([r[k] for r in P if r['leakage_weight'] == w and r['person'] == s.name and r['target'] in targets]))
                    for s in subs}
        # top1 (protection rate): higher is better; sim (probe-to-own-gallery cosine): lower is better
        for k, sign in (('top1', 1), ('sim', -1)):
            for label, targets in (('all', TARGETS), ('blackbox', black)):
                on, off = per_person(w_on, k, targets), per_person(w_off, k, targets)
                d = np.array([on[n] - off[n] for n in on])
                paired[f'{k}_{label}'] = dict(mean_diff_on_minus_off=round(float(d.mean()), 4),
                                              sem=round(float(d.std(ddof=1) / np.sqrt(len(d))), 4) if len(d) > 1 else None,
                                              on_better=int((sign * d > 0).sum()), off_better=int((sign * d < 0).sum()),
                                              ties=int((d == 0).sum()))
    print(json.dumps(dict(benchmark='leakage_weighting', people=[s.name for s in subs], epsilon=eps_of, leakage_weights=weights,
                          learn_kw=extra, targets=TARGETS, surrogates=SURROGATES, blackbox=black, probes_per_person=a.max_probes,
                          distractors=a.distractors, device=str(dev), seconds=round(time.time() - t0, 1),
                          summary=summary, paired=paired), indent=1))


if __name__ == '__main__':
    main()
