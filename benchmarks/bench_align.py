"""Benchmark facecloak.align and print JSON.

- detect+align time per 1024x1024 CelebA-HQ photo, per detector (load_photo + detect + warp; detector warm);
- the same for a 6000x4000 photo (MTCNN);
- align_paths throughput on LFW photos: cold (detection, empty landmark cache) and warm (cached landmarks).

    python benchmarks/bench_align.py [--photos 8] [--lfw 200] [--threads 1] [--device cpu]
"""
import argparse, io, json, os, platform, statistics, tempfile, time


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--photos', type=int, default=8, help='CelebA-HQ photos per detector')
    ap.add_argument('--lfw', type=int, default=200, help='LFW photos for align_paths')
    ap.add_argument('--batch-size', type=int, default=16)
    ap.add_argument('--threads', type=int, default=int(os.environ.get('OMP_NUM_THREADS', 1)))
    ap.add_argument('--device', default=None)
    ap.add_argument('--detectors', default='mtcnn,retinaface,scrfd')
    args = ap.parse_args(argv)

    import torch
    torch.set_num_threads(args.threads)
    from PIL import Image
    from facecloak import align as A
    from facecloak.assets import data_path, lfw_people
    from facecloak.core import default_device

    dev = str(default_device(args.device))
    res = dict(device=dev, threads=args.threads, torch=torch.__version__, cpu=platform.processor() or platform.machine())
    photos = sorted(data_path('celebahq').glob('*.jpg'))[:args.photos]

    per = {}
    for name in args.detectors.split(','):
        t0 = time.perf_counter(); A.get_detector(name, dev); load_s = time.perf_counter() - t0
        A.align(photos[0], detector=name, device=dev)                      # warm-up
        ts, found = [], 0
        for p in photos:
            t0 = time.perf_counter()
            try: A.align(p, detector=name, device=dev); found += 1
            except A.NoFaceError: pass
            ts.append(time.perf_counter() - t0)
        per[name] = dict(load_s=round(load_s, 3), ms_per_photo_median=round(1000*statistics.median(ts), 1),
                         ms_per_photo_mean=round(1000*statistics.mean(ts), 1), photos=len(photos), found=found)
    res['detect_align_1024'] = per

    # a 6000x4000 photo (upscaled CelebA-HQ, JPEG on disk): decode + detect at 1024 px + warp of the face box
    with tempfile.TemporaryDirectory() as d:
        big = os.path.join(d, 'big.jpg')
        Image.open(photos[0]).resize((4000, 4000)).crop((-1000, 0, 5000, 4000)).save(big, quality=90)
        ts = []
        for _ in range(3):
            t0 = time.perf_counter(); A.align(big, device=dev); ts.append(time.perf_counter() - t0)
        t0 = time.perf_counter(); A.load_photo(big); load_ms = 1000*(time.perf_counter() - t0)
        res['detect_align_6000x4000'] = dict(detector='mtcnn', ms_median=round(1000*statistics.median(ts), 1),
                                             of_which_load_photo_ms=round(load_ms, 1))

    # align_paths on LFW, cold (fresh cache) then warm
    people = lfw_people()
    paths = [p for ps in people.values() for p in ps][:args.lfw]
    with tempfile.TemporaryDirectory() as d:
        old = os.environ.get('FACECLOAK_CACHE_DIR'); os.environ['FACECLOAK_CACHE_DIR'] = d
        try:
            t0 = time.perf_counter()
            x, found = A.align_paths(paths, batch_size=args.batch_size, device=dev, on_missing='zeros', return_found=True, progress=False)
            cold = time.perf_counter() - t0
            t0 = time.perf_counter()
            A.align_paths(paths, batch_size=args.batch_size, device=dev, on_missing='zeros', progress=False)
            warm = time.perf_counter() - t0
            t0 = time.perf_counter()
            A.align_paths(paths, batch_size=1, device=dev, on_missing='zeros', progress=False, cache=False)
            unbatched = time.perf_counter() - t0
        finally:
            if old is None: os.environ.pop('FACECLOAK_CACHE_DIR', None)
            else: os.environ['FACECLOAK_CACHE_DIR'] = old
    res['align_paths_lfw'] = dict(images=len(paths), found=int(found.sum()), batch_size=args.batch_size,
                                  cold_images_per_s=round(len(paths)/cold, 1), warm_images_per_s=round(len(paths)/warm, 1),
                                  unbatched_uncached_images_per_s=round(len(paths)/unbatched, 1))
    print(json.dumps(res, indent=1))
    return res


if __name__ == '__main__':
    main()
