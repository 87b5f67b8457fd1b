"""Benchmarks of facecloak.cloak; each prints one JSON object.

    python benchmarks/bench_cloak.py protect [--people 10] [--eps 8] [--out out/cloak_protect.json]
        The issue's proof: learn from ONE photo of each of N LFW people (>= 10 photos, role 'eval'), apply the
        mask to the person's probe photos, save as JPEG q=90, re-detect and align from the file, identify
        against a clean gallery (the subjects' gallery photos + 1000 LFW distractors). Reports top-1
        identification protection per target (white-box: a surrogate; black-box: not one), verification
        protection at FAR 1e-3, and face-crop PSNR/SSIM. Uses facecloak.evaluate (resumable record at --out).
    python benchmarks/bench_cloak.py speed [--threads 2] [--synth offline]
        learn_mask wall time and peak memory on CPU with the defaults (one LFW photo, the default augmentation set or,
        with --synth, stage 1's generator; anchor bank cached), and Mask.apply time per 1024x1024 CelebA-HQ photo with
        and without detection. How the defaults were chosen: experiments/cloak_defaults.md.
"""
import argparse, json, os, resource, subprocess, sys, time
from pathlib import Path


def protect(a):
    from facecloak import evaluate as ev
    cfg = ev.EvalConfig(n_subjects=a.people, max_probes=a.probes, methods=tuple(a.methods.split(',')), epsilons=(a.eps,),
                        conditions=('clean',), fmt='jpeg', quality=90, n_distractors=a.distractors, lpips_net=None)
    t0 = time.time()
    rec = ev.run_evaluation(cfg, a.out, device='cpu', progress=True)
    rows = ev.summarize(rec)
    from facecloak.models import SURROGATES
    out = dict(config=rec['config'], versions=rec['versions'], seconds=round(time.time() - t0, 1), rows=rows)
    fc = [r for r in rows if r['method'] == 'facecloak']
    if fc:
        bb = [r['top1'] for r in fc if r['box'] == 'black']; wb = [r['top1'] for r in fc if r['box'] == 'white']
        out['summary'] = dict(black_box_top1=sum(bb) / len(bb) if bb else None, white_box_top1=sum(wb) / len(wb) if wb else None,
                              ver_far1e3=(sum(r['ver_far1e-3'] for r in fc) / len(fc)) if all('ver_far1e-3' in r for r in fc) else 'no LFW_THRESHOLDS',
                              ssim_face=fc[0].get('ssim_face'), psnr_face=fc[0].get('psnr_face'),
                              learn_s=[r.get('learn_s') for r in rec['records'] if r['kind'] == 'quality' and r['method'] == 'facecloak'],
                              surrogates=SURROGATES)
    print(ev.markdown_table(rows), file=sys.stderr)
    print(json.dumps(out, indent=1, default=str))


def _learn_child(threads, synth=None, options=()):
    "Run in a fresh process so that peak RSS is learn_mask's alone; `options`: `--set KEY=VALUE` CloakConfig options."
    import torch
    torch.set_num_threads(threads)
    from facecloak.cloak import learn_mask, build_anchor_bank, resolve_surrogates
    from facecloak.assets import lfw_people
    ppl = lfw_people(min_photos=10); photo = ppl[sorted(ppl)[0]][0]
    build_anchor_bank(resolve_surrogates(None, 'cpu')[1], progress=False)      # the bank is built once per install: cached
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    from facecloak.cli import config_options
    kw = config_options(list(options))
    t0 = time.perf_counter(); m = learn_mask(photo, device='cpu', progress=False, synth=synth, **kw); dt = time.perf_counter() - t0
    print(json.dumps(dict(learn_s=round(dt, 2), peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                          rss_before_mb=round(base / 1024, 1), source=m.meta['source'], steps=m.meta['options']['steps'], options=kw)))


def speed(a):
    import numpy as np, torch
    torch.set_num_threads(a.threads)
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
    r = subprocess.run([sys.executable, __file__, '_learn', '--threads', str(a.threads)] + (['--synth', a.synth] if a.synth else [])
                       + [x for kv in a.set for x in ('--set', kv)],
                       capture_output=True, text=True, env=env)
    if r.returncode: raise SystemExit(r.stderr[-3000:])
    learn = json.loads(r.stdout.strip().splitlines()[-1])
    from PIL import Image
    from facecloak.cloak import random_mask
    from facecloak.assets import data_path
    from facecloak.align import detect
    photos = sorted(data_path('celebahq').glob('*.jpg'))[:a.n]
    ims = [Image.open(p).convert('RGB') for p in photos]
    mask = random_mask(epsilon=8 / 255)
    faces = [detect(im)[0] for im in ims]
    mask.apply(ims[0], face=faces[0]); mask.apply(ims[0])           # warm-up
    t0 = time.perf_counter()
    for im, f in zip(ims, faces): mask.apply(im, face=f)
    no_det = (time.perf_counter() - t0) / len(ims)
    t0 = time.perf_counter()
    for im in ims: mask.apply(im)
    with_det = (time.perf_counter() - t0) / len(ims)
    load = os.getloadavg()
    print(json.dumps(dict(learn_mask=learn, apply_1024_ms=dict(without_detection=round(no_det * 1000, 1),
                                                                with_detection=round(with_det * 1000, 1), photos=len(ims)),
                          threads=a.threads, cpu_count=os.cpu_count(), loadavg=load,
                          goals=dict(learn_s=60, peak_gb=3, apply_ms_without=150, apply_ms_with=600))))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest='cmd', required=True)
    q = sub.add_parser('protect')
    q.add_argument('--people', type=int, default=10); q.add_argument('--probes', type=int, default=8)
    q.add_argument('--eps', type=float, default=8); q.add_argument('--distractors', type=int, default=1000)
    q.add_argument('--methods', default='none,facecloak'); q.add_argument('--out', default='out/cloak_protect.json')
    s = sub.add_parser('speed'); s.add_argument('--threads', type=int, default=2); s.add_argument('--n', type=int, default=5)
    s.add_argument('--synth', default=None, help="learn_mask's synth= (default: None, the augmentation set)")
    l = sub.add_parser('_learn'); l.add_argument('--threads', type=int, default=2); l.add_argument('--synth', default=None)
    for sp in (s, l): sp.add_argument('--set', action='append', default=[], metavar='KEY=VALUE', help='a CloakConfig option of the learnt mask (repeatable)')
    a = p.parse_args(argv)
    if a.cmd in ('speed', '_learn'):          # a bad option is refused before any model loads
        from facecloak.cli import config_options
        try: config_options(a.set)
        except (TypeError, ValueError) as e: sys.exit(f'--set: {e}')
    {'protect': protect, 'speed': speed, '_learn': lambda a: _learn_child(a.threads, a.synth, a.set)}[a.cmd](a)


if __name__ == '__main__':
    main()
