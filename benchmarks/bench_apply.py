"""Benchmark `facecloak apply` on a folder of 1024x1024 JPEGs and print JSON.

Makes N photos (CelebA-HQ, cycled; each copy re-encoded so files differ), then runs the real command
(`facecloak.cli.main(['apply', ...])`) with a random mask, in process and optionally with `--workers`:
photos per second including loading, batched detection, cloaking and writing; peak RSS; and the
process RSS after 10% and 100% of the photos to show memory stays flat while streaming.

    python benchmarks/bench_apply.py [--n 50] [--threads 2] [--workers 0,2] [--chunk 16]
"""
import argparse, contextlib, io, json, os, platform, resource, shutil, tempfile, threading, time
from pathlib import Path


def _rss_mb():
    import psutil
    return psutil.Process().memory_info().rss / 2**20


def make_photos(n, d):
    from PIL import Image
    from facecloak.assets import data_path
    src = sorted(data_path('celebahq').glob('*.jpg'))
    if not src: raise SystemExit('no CelebA-HQ jpgs: set FACECLOAK_DATA_DIR')
    for i in range(n):
        im = Image.open(src[i % len(src)]).convert('RGB')
        if im.size != (1024, 1024): im = im.resize((1024, 1024))
        im.save(d / f'{i:05d}.jpg', quality=90 + i // len(src) % 6)
    return len(src)


def run(mask, indir, outdir, workers, chunk, extra=()):
    "Run the command; sample this process's RSS every 50 ms against the number of outputs written so far."
    from facecloak.cli import main
    n = len(list(indir.iterdir())); samples = []; stop = threading.Event()
    def watch():
        while not stop.is_set():
            done = sum(1 for _ in outdir.glob('*.jpg')) if outdir.exists() else 0
            samples.append((done, _rss_mb())); time.sleep(0.05)
    t = threading.Thread(target=watch, daemon=True); t.start()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()) as said:      # keep this script's stdout pure JSON
        code = main(['apply', str(mask), str(indir), '-o', str(outdir), '-q', '--chunk', str(chunk)]
                    + (['--workers', str(workers)] if workers else []) + list(extra))
    dt = time.perf_counter() - t0
    stop.set(); t.join()
    at = lambda frac: max((r for k, r in samples if k <= max(1, frac * n)), default=None)
    return dict(workers=workers, exit_code=code, summary=said.getvalue().strip().splitlines()[-1:], photos=n, seconds=round(dt, 2), photos_per_s=round(n / dt, 3),
                rss_mb_at_10pct=round(at(0.10), 1) if at(0.10) else None, rss_mb_at_100pct=round(at(1.0), 1),
                rss_mb_by_progress={f'{q:.0%}': round(at(q), 1) for q in (0.1, 0.25, 0.5, 0.75, 1.0) if at(q)},
                note='RSS of the main process' + (' (the work runs in worker processes)' if workers else ''))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--n', type=int, default=50, help='number of 1024x1024 photos (e.g. 1000)')
    ap.add_argument('--threads', type=int, default=2, help='torch threads in process (2 cores is the target)')
    ap.add_argument('--workers', default='0', help='comma-separated worker counts to run, 0 = in process (e.g. 0,2)')
    ap.add_argument('--chunk', type=int, default=16)
    ap.add_argument('--keep', action='store_true', help='keep the temporary folder')
    ap.add_argument('--detector', default='mtcnn', help='detector the command uses (mtcnn, retinaface, scrfd)')
    ap.add_argument('--detect-side', type=int, default=1024, help='long side photos are detected at')
    args = ap.parse_args(argv)
    import torch
    torch.set_num_threads(args.threads)
    from facecloak.cloak import random_mask
    from facecloak.align import get_detector
    tmp = Path(tempfile.mkdtemp(prefix='bench_apply_'))
    try:
        indir = tmp / 'in'; indir.mkdir()
        n_src = make_photos(args.n, indir)
        mask = tmp / 'me.mask'; random_mask(epsilon=8 / 255, kind='sign').save(mask)
        t0 = time.perf_counter(); get_detector(args.detector); warm = time.perf_counter() - t0     # load once, not timed below
        res = dict(benchmark='facecloak apply', size='1024x1024 JPEG', n=args.n, distinct_sources=n_src,
                   chunk=args.chunk, detector=args.detector, detect_side=args.detect_side, torch_threads=args.threads, cpus=os.cpu_count(), torch=torch.__version__,
                   cpu=platform.processor() or platform.machine(), detector_load_s=round(warm, 2), runs=[])
        for w in [int(x) for x in args.workers.split(',')]:
            res['runs'].append(run(mask, indir, tmp / f'out{w}', w, args.chunk,
                                   ['--detector', args.detector, '--detect-side', str(args.detect_side)]))
        res['peak_rss_mb_main_process'] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        res['peak_rss_mb_children'] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)
        res['goal'] = '>= 5 photos/s on 2 CPU cores, detection included'
        print(json.dumps(res, indent=1))
    finally:
        if not args.keep: shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    main()
