"""Benchmark `facecloak.perception` (ColorVideoVDP JOD, NVIDIA FLIP) on the CPU and score real cloaks; print JSON.

Timing: the first call (importing `pycvvdp` and building the metric for the display), then seconds per call, wall
and CPU, of `jod`, `flip_error` and `visibility` on a 112² face and on a whole 1024² portrait (the median of
`--repeat` calls, each on a fresh ±8/255 noise). Cases: face SSIM/PSNR next to face JOD/FLIP
(`facecloak.attacker.native_quality`, the detected face grown by 5%) for a learnt mask (`--mask`, default
experiments/prior2870.mask) and the shipped prior on an LFW photo and on a 1024² CelebA-HQ portrait, and for
uniform ±8/255 noise on the same photos. Needs FACECLOAK_DATA_DIR (LFW, CelebA-HQ) and the detector's weights.

    python benchmarks/bench_perception.py [--repeat 5] [--threads 1] [--mask experiments/prior2870.mask]
"""
import argparse, json, os, platform, statistics, time
from pathlib import Path

import numpy as np


def timed(f, *a, **k):
    "Wall and CPU seconds of one call, and its result."
    w, c = time.perf_counter(), time.process_time()
    out = f(*a, **k)
    return time.perf_counter() - w, time.process_time() - c, out


def noisy(im, amp=8, seed=0):
    "`im` with uniform noise in [-amp, amp] grey levels, rounded and clipped, as a PIL image."
    from PIL import Image
    a = np.asarray(im).astype(float) + np.random.default_rng(seed).uniform(-amp, amp, np.asarray(im).shape)
    return Image.fromarray(np.clip(np.round(a), 0, 255).astype(np.uint8))


def timings(portrait, repeat, display):
    "Seconds per call of each measure at 112² and 1024² (median over `repeat` noise draws)."
    from facecloak import perception
    out = {}
    for side in (112, 1024):
        im = portrait.resize((side, side))
        row = {}
        for name, f in (('jod', perception.jod), ('flip_error', perception.flip_error), ('visibility', perception.visibility)):
            runs = [timed(f, im, noisy(im, seed=i), display=display)[:2] for i in range(repeat)]
            row[name] = dict(wall_s=round(statistics.median(r[0] for r in runs), 4), cpu_s=round(statistics.median(r[1] for r in runs), 4))
        out[f'{side}x{side}'] = row
    return out


def cases(photos, maskers):
    "Face quality (SSIM, PSNR, JOD, FLIP) of each masker and of ±8/255 noise on each photo."
    from facecloak import align
    from facecloak.attacker import native_quality
    out = []
    for label, path in photos.items():
        im = align.load_photo(path)
        box = align.detect(im)[0].box
        protected = {name: m.apply(im) for name, m in maskers.items()} | {'uniform noise ±8/255': noisy(im)}
        for name, prot in protected.items():
            s, _, q = timed(native_quality, im, prot, box=box)
            out.append(dict(photo=label, file=Path(path).name, size=q['size'], face_box=[round(float(v)) for v in box], case=name,
                            **{k: round(q[k], 4) for k in ('ssim_face', 'psnr_face', 'jod_face', 'flip_face', 'ssim', 'psnr')},
                            native_quality_s=round(s, 3)))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--repeat', type=int, default=5, help='calls per measure and size (the median is reported)')
    ap.add_argument('--threads', type=int, default=1, help='torch threads (ColorVideoVDP runs on torch)')
    ap.add_argument('--mask', default='experiments/prior2870.mask', help='a learnt mask to score besides the shipped prior')
    ap.add_argument('--display', default=None, help='a ColorVideoVDP SDR display model (default facecloak.perception.DISPLAY)')
    args = ap.parse_args(argv)
    import torch
    torch.set_num_threads(args.threads)
    from facecloak import cloak, perception
    from facecloak.assets import lfw_people
    from facecloak.attacker import portrait_photos
    display = args.display or perception.DISPLAY
    portrait = portrait_photos(1)[0]
    lfw = lfw_people(); person = sorted(lfw)[0]
    from facecloak.align import load_photo
    im = load_photo(portrait)
    first_w, first_c, _ = timed(perception.visibility, im.resize((112, 112)), noisy(im.resize((112, 112))), display=display)
    res = dict(benchmark='facecloak.perception', display=perception.display_model(display), torch_threads=args.threads,
               omp_num_threads=os.environ.get('OMP_NUM_THREADS'), cpus=os.cpu_count(), torch=torch.__version__,
               cpu=platform.processor() or platform.machine(),
               first_call=dict(wall_s=round(first_w, 3), cpu_s=round(first_c, 3),
                               note='imports pycvvdp and builds the metric for the display, then scores a 112² pair'),
               seconds_per_call=timings(im, args.repeat, display))
    maskers = {'shipped prior (facecloak/prior.mask)': cloak.load_prior()}
    if Path(args.mask).exists(): maskers = {f'learnt mask ({args.mask})': cloak.Mask.load(args.mask)} | maskers
    res['cases'] = cases({'LFW 250²': lfw[person][0], 'CelebA-HQ 1024²': portrait}, maskers)
    print(json.dumps(res, indent=1))


if __name__ == '__main__':
    main()
