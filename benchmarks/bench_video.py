"""Benchmark `Mask.apply_video` on a 720p (or any size) clip and print JSON.

Makes a clip of CelebA-HQ portraits (each 720 px high on a 1280x720 frame, a little motion, 30 fps, with a
sound track), then protects it with the shipped prior mask (any mask costs the same to apply):

- `apply_only`: landmarks given (found once on the first frame): decode, add the mask, encode;
- `detect_every_5` (the default): a detection every 5th frame, optical flow and smoothing between;
- `detect_every_1`: a detection on every frame;
- `decode_only`: reading the frames, for reference;
- `clip_masks`: the default (issue #36): the keyframe pass (scenes, keyframes, a clip mask refined per scene with
  `DEFAULT_REFINE` steps), then the main pass as `detect_every_5`; frames per second of the main pass, and the
  keyframe pass's seconds, per scene and per clip minute (the clip has one scene per portrait).

The runs other than `clip_masks` apply the plain mask (`refine=0`).

Frames per second, and this process's RSS sampled through each run (at 10 % and 100 % of its time: a
longer clip must not need more memory).

    python benchmarks/bench_video.py [--seconds 10] [--fps 30] [--size 1280x720] [--threads 2] [--runs apply_only,detect_every_5,detect_every_1]
"""
import argparse, json, os, platform, resource, shutil, tempfile, threading, time
from pathlib import Path


def _rss_mb():
    import psutil
    return psutil.Process().memory_info().rss / 2**20


def make_clip(dst, seconds, fps, n_photos=3, size=(1280, 720)):
    "A clip of `size` (w, h): CelebA-HQ portraits scaled to its height, centred on their own blurred, stretched copy."
    from PIL import Image, ImageFilter
    from facecloak.assets import data_path
    from facecloak.video import synthetic_clip
    src = sorted(data_path('celebahq').glob('*.jpg'))[:n_photos]
    if not src: raise SystemExit('no CelebA-HQ jpgs: set FACECLOAK_DATA_DIR')
    frames = []
    for p in src:
        w, h = size
        im = Image.open(p).convert('RGB').resize((h, h), Image.BICUBIC)
        bg = im.resize((w, h)).filter(ImageFilter.GaussianBlur(20))
        bg.paste(im, ((w - h) // 2, 0)); frames.append(bg)
    return synthetic_clip(frames, dst, fps=fps, seconds=seconds / len(frames), audio=True, crf=18)


def timed(fn):
    "Run `fn()` while sampling RSS every 50 ms: (result, seconds, RSS at 10 % of the time, peak RSS)."
    samples, stop = [], threading.Event()
    def watch():
        while not stop.is_set(): samples.append((time.perf_counter(), _rss_mb())); time.sleep(0.05)
    t = threading.Thread(target=watch, daemon=True); t0 = time.perf_counter(); t.start()
    try: out = fn()
    finally: stop.set(); t.join()
    dt = time.perf_counter() - t0
    early = [r for s, r in samples if s - t0 <= 0.1 * dt]
    return out, dt, round(max(early or [samples[0][1]]), 1), round(max(r for _, r in samples), 1)


def _keyframe_costs(rep, info) -> dict:
    "The keyframe pass of a `clip_masks` run: its seconds (per scene, per clip minute) and the main pass's frames per second."
    minutes = rep.frames / max(info.fps, 1e-9) / 60
    return dict(main_pass_frames_per_s=round(rep.fps, 1), keyframe_s=round(rep.keyframe_seconds, 2), scenes=len(rep.scenes),
                scenes_refined=sum(s['refined'] for s in rep.scenes), refine_steps=rep.refine,
                keyframes=sum(len(s['keyframes']) for s in rep.scenes),
                keyframe_s_per_scene=round(rep.keyframe_seconds / max(len(rep.scenes), 1), 2),
                keyframe_s_per_clip_minute=round(rep.keyframe_seconds / minutes, 1))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--seconds', type=float, default=10)
    ap.add_argument('--fps', type=int, default=30)
    ap.add_argument('--size', default='1280x720', help='frame size WxH (default 1280x720; 1920x1080 for full HD)')
    ap.add_argument('--threads', type=int, default=2, help='torch threads (2 cores is the target)')
    ap.add_argument('--runs', default='decode_only,apply_only,detect_every_5,detect_every_1,clip_masks')
    ap.add_argument('--keep', action='store_true', help='keep the temporary folder')
    args = ap.parse_args(argv)
    import cv2, torch
    torch.set_num_threads(args.threads); cv2.setNumThreads(args.threads)
    from facecloak import align
    from facecloak.cloak import load_prior
    from facecloak.video import apply_video, probe, read_frames
    tmp = Path(tempfile.mkdtemp(prefix='bench_video_'))
    try:
        clip = make_clip(tmp / 'clip.mp4', args.seconds, args.fps, size=tuple(int(v) for v in args.size.split('x')))
        info = probe(clip); mask = load_prior()
        first = next(read_frames(clip))
        t0 = time.perf_counter(); lm = mask.select_face(first, align.detect(first, max_side=640)).landmarks
        warm = time.perf_counter() - t0                                   # detector loaded once, not timed below
        res = dict(benchmark='Mask.apply_video', size=f'{info.width}x{info.height}', fps_clip=info.fps, frames=info.frames,
                   codec='libx264 crf 18 preset veryfast, yuv420p; sound copied', torch_threads=args.threads, cpus=os.cpu_count(),
                   cpu=platform.processor() or platform.machine(), detector_first_call_s=round(warm, 2), runs=[])
        plans = dict(apply_only=dict(landmarks=lm, refine=0), detect_every_5=dict(detect_every=5, refine=0),
                     detect_every_1=dict(detect_every=1, refine=0), clip_masks=dict(detect_every=5))
        for name in args.runs.split(','):
            if name == 'decode_only':
                n, dt, early, peak = timed(lambda: sum(1 for _ in read_frames(clip)))
            else:
                rep, dt, early, peak = timed(lambda: apply_video(mask, clip, tmp / f'{name}.mp4', progress=False, **plans[name]))
                n = rep.frames
                if rep.cloaked != n: raise SystemExit(f'{name}: only {rep.cloaked} of {n} frames cloaked')
            res['runs'].append(dict(run=name, frames=n, seconds=round(dt, 2), frames_per_s=round(n / dt, 1),
                                    rss_mb_at_10pct=early, rss_mb_peak=peak))
            if name == 'clip_masks': res['runs'][-1].update(_keyframe_costs(rep, info))
        res['peak_rss_mb'] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        res['goal'] = '>= 25 frames/s apply-only at 720p on 2 CPU cores; flat memory'
        print(json.dumps(res, indent=1))
    finally:
        if not args.keep: shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    main()
