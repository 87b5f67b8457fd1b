"""Issue #16: does a cloak survive video? Frames of protected clips attacked as photos, beside the same photos protected.

For each development-split person: the default mask is learnt from photo 1 (`learn_mask`, as the `facecloak`
evaluation method), and the person's 6 probe photos (never seen by learning) are protected two ways:

- `photo`: each probe protected as a photo and written as JPEG q90 (the evaluation's protocol);
- `video crf N`: the probes made into a clip (`synthetic_clip`: 1 s each at 10 fps, a little motion), the clip
  protected by `Mask.apply_video` (detection every 5 frames, flow and smoothing between) and encoded by x264 at
  crf 18 (facecloak's default) and crf 28 (a heavier re-encoding, as an upload site might do);
- `video none`: the clean clip's frames (the attacker's success on unprotected video).

The attacker decodes every second frame, detects and aligns each as a photo, and identifies it against the
evaluation's gallery (the people's gallery photos plus 500 LFW distractors). Protection is the top-1 rate of
frames (photos) whose nearest identity is not the person, per model; black-box = models that did not learn the
mask. Flicker inside the face region (`facecloak.video.flicker`) is recorded for the crf 18 clip.

    python experiments/video_protection.py --people 24 --out data/eval/video_dev24.jsonl    # resumable
    python experiments/video_protection.py --out data/eval/video_dev24.jsonl --report figures/eval/video_protection.png

Issue #36 (per-clip refinement) adds arms, chosen with `--arms` (comma-separated):

- `photo refine K`: each probe protected as a photo with K per-photo refinement steps (`Mask.apply(refine=K)`);
- `clip kN crf C`: the clip protected with clip masks (`facecloak.video.clip_masks`: the mask refined with `--steps`
  steps on N keyframes of each scene; the synthetic clip's 6 photos are 6 scenes), x264 at crf C; the clip masks are
  made once per N and shared by the crf arms (`apply_video(scenes=)`); `video crf C` is the plain mask (`refine=0`).

    python experiments/video_protection.py --people 24 --out data/eval/video_clip_dev24.jsonl \
        --arms 'photo,photo refine 20,video crf 18,clip k1 crf 18,clip k4 crf 18,clip k1 crf 28,clip k4 crf 28'
    python experiments/video_protection.py --out data/eval/video_clip_dev24.jsonl --report figures/eval/video_clip.png --base 'video crf 18'
"""
import argparse, json, tempfile, time
from pathlib import Path

import numpy as np

ARMS = ('photo', 'video crf 18', 'video crf 28', 'video none')


def _attack(paths, subject, gallery, models, thresholds):
    from facecloak import evaluate as E
    from facecloak.models import embed
    x, found = E.attacker_align(paths, cache=False)
    return {n: E.protection(gallery, n, embed([m], x)[0].cpu(), found, subject.name, thresholds.get(n, {})) for n, m in models.items()}


def _frames_to_png(clip, d, tag, every=2):
    from PIL import Image
    from facecloak.video import read_frames
    out = []
    for i, f in enumerate(read_frames(clip, every=every)):
        p = Path(d)/f'{tag}_{i:03d}.png'; Image.fromarray(f).save(p); out.append(p)
    return out


def _photo_arm(mask, subject, d, refine, device):
    "The probes protected as photos (`refine` per-photo steps) and written as JPEG q90."
    out = []
    for i, p in enumerate(subject.probes):
        q = d/f'photo{refine}_{i}.jpg'
        mask.apply(p, refine=refine, device=device).convert('RGB').save(q, 'JPEG', quality=90); out.append(q)
    return out


def _video_arm(arm, mask, clean, d, rec, scenes, steps, device):
    "Protect the clean clip as `arm` says ('video crf C': the plain mask; 'clip kN crf C': clip masks); its frames' paths."
    from facecloak.video import apply_video, clip_masks, flicker
    w = arm.split(); crf, tag = int(w[-1]), arm.replace(' ', '_')
    kw = dict(refine=0)
    if w[0] == 'clip':
        n = int(w[1][1:])
        if n not in scenes:
            t0 = time.perf_counter()
            scenes[n] = clip_masks(mask, clean, keyframes=n, steps=steps, device=device)
            rec.setdefault('keyframe_s', {})[f'k{n}'] = round(time.perf_counter() - t0, 1)
            rec.setdefault('scenes', {})[f'k{n}'] = [[s.start, s.end, s.faces, s.refined] for s in scenes[n]]
        kw = dict(scenes=scenes[n], refine=steps)
    t0 = time.perf_counter()
    rep = apply_video(mask, clean, d/f'{tag}.mp4', crf=crf, device=device, progress=False, **kw)
    rec.setdefault('apply_fps', {})[arm] = round(rep.frames / (time.perf_counter() - t0), 1)
    rec.setdefault('cloaked', {})[arm] = [rep.cloaked, rep.frames]
    if crf == 18:
        fl = {k: round(float(v), 4) for k, v in flicker(clean, d/f'{tag}.mp4', rep.landmarks, mask).items()}
        if arm == 'video crf 18': rec['flicker'] = fl
        rec.setdefault('flickers', {})[arm] = fl
    return _frames_to_png(d/f'{tag}.mp4', d, tag)


def person(subject, gallery, models, thresholds, device=None, arms=ARMS, steps=20):
    "One person's record: protection per arm and model, the mask's surrogates, flicker, times."
    from facecloak.cloak import learn_mask
    from facecloak.video import synthetic_clip
    t0 = time.perf_counter()
    mask = learn_mask(subject.learn, progress=False, device=device)
    rec = dict(person=subject.name, surrogates=mask.surrogates, learn_s=round(time.perf_counter() - t0, 1), steps=steps, arms={})
    with tempfile.TemporaryDirectory() as d:
        d, scenes = Path(d), {}
        clean = synthetic_clip(subject.probes, d/'clean.mp4', fps=10, seconds=1.0, size=(250, 250))
        for arm in arms:
            t0 = time.perf_counter()
            if arm.startswith('photo'):
                paths = _photo_arm(mask, subject, d, int(arm.split()[-1]) if ' refine ' in arm else 0, device)
            elif arm == 'video none': paths = _frames_to_png(clean, d, 'none')
            else: paths = _video_arm(arm, mask, clean, d, rec, scenes, steps, device)
            rec['arms'][arm] = _attack(paths, subject, gallery, models, thresholds)
            rec.setdefault('arm_s', {})[arm] = round(time.perf_counter() - t0, 1)
    for arm in rec['arms'].values():
        for r in arm.values(): r.pop('sims', None)
    return rec


def run(args):
    from facecloak import evaluate as E, models as M
    subs = E.subjects(args.people, split='dev', max_probes=6)
    targets = [t for t in M.TARGETS if M.present(t)]
    models = {t: M.load_model(t) for t in targets}
    gallery = E.Gallery(models, subs, n_distractors=500)
    out = Path(args.out); out.parent.mkdir(parents=True, exist_ok=True)
    done = {json.loads(l)['person'] for l in out.open()} if out.exists() else set()
    for s in subs:
        if s.name in done: continue
        t0 = time.perf_counter()
        rec = person(s, gallery, models, E.LFW_THRESHOLDS, args.device, arms=args.arms.split(','), steps=args.steps)
        with out.open('a') as f: f.write(json.dumps(rec) + '\n')
        bb = {a: np.mean([r['top1'] for n, r in v.items() if n not in rec['surrogates']]) for a, v in rec['arms'].items()}
        print(s.name, f'{time.perf_counter() - t0:.0f}s', {a: round(float(v), 3) for a, v in bb.items()}, flush=True)


def summary(path, base='photo'):
    "Per arm: black-box and white-box top-1 over people, paired difference to `base` +- SE, people up/down; flicker."
    recs = [json.loads(l) for l in Path(path).open()]
    box = lambda r, a, black: float(np.mean([v['top1'] for n, v in r['arms'][a].items() if (n not in r['surrogates']) == black]))
    rows = []
    seen = list(dict.fromkeys(a for r in recs for a in r['arms']))      # a record may hold arms only some people have
    arms = [a for a in ARMS if a in seen] + [a for a in seen if a not in ARMS]
    for a in arms:
        has = [r for r in recs if a in r['arms']]
        bb = np.array([box(r, a, True) for r in has]); wb = np.array([box(r, a, False) for r in has])
        pair = [r for r in has if base in r['arms']]                         # paired over the people who have both
        d = np.array([box(r, a, True) - box(r, base, True) for r in pair])
        rows.append(dict(arm=a, people=len(has), black=bb.mean(), white=wb.mean(), diff=d.mean() if len(d) else float('nan'),
                         se=d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else float('nan'),
                         up=int((d > 1e-9).sum()), down=int((d < -1e-9).sum()), per_person=bb))
    fl = {k: float(np.mean([r['flicker'][k] for r in recs])) for k in recs[0]['flicker']}
    return rows, fl, recs


def report(path, fig, base='photo'):
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    rows, fl, recs = summary(path, base)
    print(f'| attacked as | black-box top-1 | paired vs {base} (up / down) | white-box top-1 |')
    print('|---|---|---|---|')
    for r in rows:
        pd = '—' if r['arm'] == base else f"{r['diff']:+.3f} ± {r['se']:.3f} ({r['up']} / {r['down']})"
        arm = r['arm'] if r['people'] == len(recs) else f"{r['arm']} ({r['people']} of {len(recs)} people)"
        print(f"| {arm} | {r['black']:.3f} | {pd} | {r['white']:.3f} |")
    print('flicker (grey levels, face region, mean over people):', {k: round(v, 3) for k, v in fl.items()})
    if 'apply_fps_crf18' in recs[0]:
        print('apply frames/s (250x250 clip, detection every 5):', round(float(np.mean([r['apply_fps_crf18'] for r in recs])), 1))
    else: _clip_costs(recs)
    rows = [r for r in rows if r['people'] == len(recs)]       # the figure: the arms every person has
    fig_, ax = plt.subplots(1, 2, figsize=(10, 3.8))
    x = np.arange(len(rows))
    ax[0].bar(x, [r['black'] for r in rows], yerr=[r['per_person'].std(ddof=1) / np.sqrt(r['people']) if r['people'] > 1 else 0 for r in rows], color='C0', alpha=.8)
    ax[0].set_xticks(x, [r['arm'] for r in rows], rotation=15); ax[0].set_ylabel('black-box top-1 protection')
    ax[0].set_title(f'{len(recs)} dev people, 6 probes each')
    ref = next(r['per_person'] for r in rows if r['arm'] == base)
    for r in rows:
        if r['arm'] not in (base, 'video none') and not r['arm'].startswith('photo'):
            ax[1].scatter(ref, r['per_person'], label=r['arm'], s=18)
    ax[1].plot([0, 1], [0, 1], 'k--', lw=.8)
    ax[1].set_xlabel('photo (JPEG q90)' if base == 'photo' else base); ax[1].set_ylabel('video frames')
    ax[1].set_title('per person, black-box'); ax[1].legend()
    fig_.tight_layout(); Path(fig).parent.mkdir(parents=True, exist_ok=True); fig_.savefig(fig, dpi=110)


def _clip_costs(recs):
    "Per arm: flicker, main-pass frames/s and frames cloaked; per keyframe count: the keyframe pass's seconds per scene."
    keys = lambda f: list(dict.fromkeys(k for r in recs for k in r.get(f, {})))   # over every person: arms may differ
    with_ = lambda f, a: [r for r in recs if a in r.get(f, {})]
    for a in keys('flickers'):
        f = {k: round(float(np.mean([r['flickers'][a][k] for r in with_('flickers', a)])), 3) for k in ('original', 'protected', 'cloak', 'cloak_level')}
        print(f'flicker {a} ({len(with_("flickers", a))} people):', f)
    for a in keys('apply_fps'):
        rs = with_('apply_fps', a); c = np.sum([r['cloaked'][a] for r in rs], 0)
        print(f'{a}: main pass {np.mean([r["apply_fps"][a] for r in rs]):.1f} frames/s (250x250), {c[0]} of {c[1]} frames cloaked')
    for k in keys('keyframe_s'):
        rs = with_('keyframe_s', k)
        n = np.mean([len(r['scenes'][k]) for r in rs])
        s = np.mean([r['keyframe_s'][k] for r in rs])
        bare = sum(not sc[3] for r in rs for sc in r['scenes'][k])
        print(f'keyframe pass {k} ({len(rs)} people): {s:.1f} s per clip of {n:.0f} scenes ({s / n:.1f} s per scene), {bare} scenes without a face')

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--people', type=int, default=24)
    ap.add_argument('--out', default='data/eval/video_dev24.jsonl')
    ap.add_argument('--device', default=None)
    ap.add_argument('--report', default=None, help='write the figure here and print the table (no new runs)')
    ap.add_argument('--arms', default=','.join(ARMS), help='comma-separated arms (see above)')
    ap.add_argument('--steps', type=int, default=20, help="steps of the clip masks ('clip' arms)")
    ap.add_argument('--base', default='photo', help='the arm the paired differences are taken against (--report)')
    a = ap.parse_args()
    if a.report: report(a.out, a.report, a.base)
    else: run(a)
