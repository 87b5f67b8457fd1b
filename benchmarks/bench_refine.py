"""Benchmark the refine dial (issue #13, lever 5): seconds per photo of `mask.apply(photo, refine=K)` and of
per-photo PGD, on one CPU machine, and print one JSON object.

    python benchmarks/bench_refine.py [--people 2] [--photos 3] [--ks 0,2,5,10,20] [--threads 2] [--device cpu]
                                      [--portraits N] [--set KEY=VALUE ...]

For each of --people development-split people (`facecloak.evaluate.subjects(split='dev')`), the default mask is
learnt from photo 1 (its learning time is reported too), then applied to --photos of the person's probes with
K refine steps for each K of --ks, and per-photo PGD (the `pgd` evaluation method: 60 steps from zero on the
photo alone) protects the same photos. Every time includes detection and alignment of the photo, as a user
sees it; the first call of each kind is a warm-up and is not counted. Protection for the same settings is
measured by `facecloak eval` (experiments/levers.md); this script measures only time, on an idle machine.
`--portraits N` also times each K on the first N large portraits (`facecloak.evaluate.portrait_photos`: 1024²
CelebA-HQ), where the face is magnified 4-5x; `--set` passes `CloakConfig` options to the mask, as `facecloak learn
--set` does (issue #14: `--set visibility=4 --set refine_visibility=4`, the refine steps weighing the visibility
term at the photo's own magnification).
"""
import argparse, json, platform, sys, time


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--people', type=int, default=2); ap.add_argument('--photos', type=int, default=3)
    ap.add_argument('--ks', default='0,2,5,10,20'); ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--device', default='cpu')
    ap.add_argument('--portraits', type=int, default=0, help='also time each K on the first N large portraits')
    ap.add_argument('--set', action='append', default=[], metavar='KEY=VALUE', help='a CloakConfig option of the mask (repeatable)')
    a = ap.parse_args(argv)
    ks = [int(k) for k in a.ks.split(',') if k.strip()]
    if a.people < 1 or a.photos < 1 or not ks or min(ks) < 0: raise SystemExit('--people and --photos must be >= 1, --ks >= 0')
    from facecloak.cli import config_options
    try: options = config_options(a.set)
    except (TypeError, ValueError) as e: sys.exit(f'--set: {e}')
    import torch
    torch.set_num_threads(a.threads)
    from facecloak import evaluate as E
    from facecloak.cloak import learn_mask
    subs = E.subjects(a.people, split='dev', max_probes=a.photos)
    pgd = E.METHODS['pgd'](subs[0], 8 / 255, None, a.device)
    times, learn = {str(k): [] for k in ks} | {'pgd': []}, []
    portraits, big = E.portrait_photos(a.portraits) if a.portraits else [], {str(k): [] for k in ks}
    for s in subs:
        t0 = time.perf_counter(); mask = learn_mask(s.learn, device=a.device, progress=False, **options); learn.append(time.perf_counter() - t0)
        mask.apply(s.probes[0], refine=max(ks), device=a.device)               # warm-up: detector, models, caches
        for p in s.probes[:a.photos]:
            for k in ks:
                t0 = time.perf_counter(); mask.apply(p, refine=k, device=a.device); times[str(k)].append(time.perf_counter() - t0)
            t0 = time.perf_counter(); pgd.apply(p); times['pgd'].append(time.perf_counter() - t0)
        for p in portraits:
            for k in ks:
                t0 = time.perf_counter(); mask.apply(p, refine=k, device=a.device); big[str(k)].append(time.perf_counter() - t0)
    mean = lambda v: round(sum(v) / len(v), 3)
    print(json.dumps(dict(people=len(subs), photos=len(times['pgd']), threads=a.threads, device=a.device,
                          options=options, learn_s=mean(learn), apply_s={k: mean(v) for k, v in times.items()},
                          **(dict(portraits=len(portraits), apply_portrait_s={k: mean(v) for k, v in big.items()}) if portraits else {}),
                          torch=torch.__version__, machine=platform.processor() or platform.machine())))


if __name__ == '__main__':
    main()
