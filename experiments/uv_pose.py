"""Issue #15: the surface-anchored mask (`parameterisation='uv'`) against the aligned-space mask, split by head pose.

    python experiments/uv_pose.py [--record data/eval/dev24_uv.json.gz] [--out figures/eval/uv_pose.png]
                                  [--mask-figure figures/eval/uv_masks.png]

Reads the development-split record of experiments/uv.md, which holds both masks with each probe's outcome
(`protected`, per target and condition). Each probe's head pose is the yaw of stage 1's 3D fit
(`facecloak.face3d.fit` in the box the detector finds), cached beside the record as `<record>.pose.json`.
A probe is *turned* when |yaw| >= `--turned` degrees (20), else *frontal*. For each group and condition the
script prints, over the people who have probes in it, the mean black-box top-1 protection of each mask (per
person: the mean over their probes in the group and the black-box targets), the paired difference ± its
standard error, and the people moved up / down.
"""
import argparse, json, sys
from pathlib import Path

import numpy as np

BASE, UV = 'facecloak', 'facecloak[parameterisation=uv]'


def probe_yaws(rec, cache: Path) -> dict:
    "{person: [yaw of each probe, in degrees, or None where no face was found]}, computed once and cached."
    if cache.exists(): return json.loads(cache.read_text())
    from facecloak import align, face3d
    from facecloak.evaluate import subjects
    c = rec['config']
    out = {}
    for s in subjects(c['n_subjects'], max_probes=c['max_probes'], seed=c['seed'], split=c['split']):
        ys = []
        for p in s.probes:
            im = align.load_photo(p); faces = align.detect(im)
            ys.append(round(face3d.fit(im, faces[0].box).angles[0], 2) if faces else None)
        out[s.name] = ys
    cache.write_text(json.dumps(out, indent=0)); return out


def per_probe(rec, method: str, condition: str, box: str = 'black') -> dict:
    "{person: (probes,) mean over the `box` targets of each probe's top-1 protection}."
    acc = {}
    for r in rec['records']:
        if r['kind'] == 'protection' and r['method'] == method and r['condition'] == condition and r['box'] == box:
            acc.setdefault(r['person'], []).append(r['protected'])
    return {p: np.mean(np.array(v, float), 0) for p, v in acc.items()}


def split_table(rec, yaws: dict, condition: str, turned: float = 20.) -> list:
    "Rows (group, people, probes, base, uv, diff, se, up, down) for all probes, frontal and turned ones."
    a, b = per_probe(rec, BASE, condition), per_probe(rec, UV, condition)
    rows = []
    for group, keep in (('all probes', lambda y: True), (f'frontal (|yaw| < {turned:g}°)', lambda y: abs(y) < turned),
                        (f'turned (|yaw| >= {turned:g}°)', lambda y: abs(y) >= turned)):
        xa, xb, n_probes = [], [], 0
        for p in sorted(set(a) & set(b)):
            sel = [i for i, y in enumerate(yaws.get(p, [])) if y is not None and keep(y)]
            if not sel: continue
            xa.append(a[p][sel].mean()); xb.append(b[p][sel].mean()); n_probes += len(sel)
        if not xa: rows.append(dict(group=group, people=0, probes=0)); continue
        d = np.array(xb) - np.array(xa)
        se = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float('nan')
        rows.append(dict(group=group, people=len(d), probes=n_probes, base=float(np.mean(xa)), uv=float(np.mean(xb)),
                         diff=float(d.mean()), se=se, up=int((d > 1e-9).sum()), down=int((d < -1e-9).sum())))
    return rows


def mask_figure(rec, yaws: dict, out: str, person: str | None = None):
    """Both masks of one development person (the first with a turned probe, or `person`), learnt with the defaults,
    on that person's most frontal and most turned probes: the change each adds to the aligned face, amplified."""
    import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt
    import torch
    from facecloak import align, cloak
    from facecloak.evaluate import subjects
    c = rec['config']
    subs = {s.name: s for s in subjects(c['n_subjects'], max_probes=c['max_probes'], seed=c['seed'], split=c['split'])}
    person = person or next(p for p in subs if any(y is not None and abs(y) >= 20 for y in yaws.get(p, [])))
    s, ys = subs[person], yaws[person]
    order = sorted((abs(y), i) for i, y in enumerate(ys) if y is not None)
    picks = [order[0][1], order[-1][1]]
    masks = {'aligned-space mask': cloak.learn_mask(s.learn, progress=False),
             'surface mask (uv)': cloak.learn_mask(s.learn, parameterisation='uv', progress=False)}
    fig, axs = plt.subplots(len(picks), 3, figsize=(6.6, 2.3 * len(picks)))
    for r, i in enumerate(picks):
        crop = align.align(s.probes[i], size=(112, 112)).image.cpu()
        axs[r, 0].imshow(crop[0].permute(1, 2, 0).numpy()); axs[r, 0].set_title(f'probe, yaw {ys[i]:+.0f}°', fontsize=8)
        for k, (name, m) in enumerate(masks.items()):
            d = m.on_face(crop).effective[0].permute(1, 2, 0)
            axs[r, k + 1].imshow((d / (2 * m.epsilon) + 0.5).clamp(0, 1).numpy()); axs[r, k + 1].set_title(name, fontsize=8)
    for a in axs.flat: a.axis('off')
    fig.suptitle(f'{person}: the change each mask adds to the aligned face (±ε shown full scale)', fontsize=8)
    fig.tight_layout(); Path(out).parent.mkdir(parents=True, exist_ok=True); fig.savefig(out, dpi=110)
    print(f'figure: {out}', file=sys.stderr)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--record', default='data/eval/dev24_uv.json.gz'); ap.add_argument('--out', default=None)
    ap.add_argument('--turned', type=float, default=20.)
    ap.add_argument('--mask-figure', default=None, help='also learn both masks of one person and draw them on two probes (PNG)')
    ap.add_argument('--person', default=None, help='the person of --mask-figure (default: the first with a turned probe)')
    a = ap.parse_args(argv)
    from facecloak.evaluate import load_record
    rec = load_record(a.record)
    if rec is None: raise SystemExit(f'no record at {a.record}: run the command in experiments/uv.md')
    yaws = probe_yaws(rec, Path(str(a.record).replace('.json.gz', '') + '.pose.json'))
    ally = [abs(y) for v in yaws.values() for y in v if y is not None]
    print(f'probe |yaw|: median {np.median(ally):.1f}°, {np.mean(np.array(ally) >= a.turned):.0%} of {len(ally)} at >= {a.turned:g}°')
    q = {m: [x for x in rec['records'] if x['kind'] == 'quality' and x['method'] == m] for m in (BASE, UV)}
    for m, xs in q.items():
        if xs: print(f"{m}: {len(xs)} people, face SSIM {np.mean([x['ssim_face'] for x in xs]):.3f}, full-size portrait SSIM "
                     f"{np.mean([x.get('portrait_ssim_face', np.nan) for x in xs]):.3f}, learn {np.mean([x['learn_s'] for x in xs]):.0f} s, "
                     f"apply {np.mean([x['apply_s'] for x in xs]):.2f} s/photo")
    tables = {}
    for cond in rec['config']['conditions']:
        tables[cond] = rows = split_table(rec, yaws, cond, a.turned)
        print(f'\n### {cond}: black-box top-1 protection\n')
        print('| group | people | probes | aligned mask | surface mask | paired difference ± SE | up / down |')
        print('|---|---|---|---|---|---|---|')
        for r in rows:
            if not r['people']: print(f"| {r['group']} | 0 | 0 | | | | |"); continue
            print(f"| {r['group']} | {r['people']} | {r['probes']} | {r['base']:.3f} | {r['uv']:.3f} | "
                  f"{r['diff']:+.3f} ± {r['se']:.3f} | {r['up']} / {r['down']} |")
    if a.out:
        import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt
        fig, axs = plt.subplots(1, len(tables), figsize=(5.4 * len(tables), 3.6), squeeze=False)
        for ax, (cond, rows) in zip(axs[0], tables.items()):
            rows = [r for r in rows if r['people']]
            x = np.arange(len(rows))
            ax.bar(x - 0.2, [r['base'] for r in rows], 0.4, label='aligned-space mask (default)')
            ax.bar(x + 0.2, [r['uv'] for r in rows], 0.4, label='surface mask (uv)')
            for i, r in enumerate(rows): ax.annotate(f"{r['diff']:+.3f}\n±{r['se']:.3f}", (i, max(r['base'], r['uv']) + 0.02), ha='center', fontsize=7)
            ax.set_xticks(x, [f"{r['group'].split(' (')[0]}\n{r['people']} people, {r['probes']} probes" for r in rows], fontsize=6.5)
            ax.set(ylim=(0, 1), ylabel='black-box top-1 protection', title=f'development split, {cond}')
            ax.legend(fontsize=7, loc='upper left'); ax.grid(alpha=.3, axis='y')
        fig.tight_layout(); Path(a.out).parent.mkdir(parents=True, exist_ok=True); fig.savefig(a.out, dpi=110)
        print(f'figure: {a.out}', file=sys.stderr)
    if a.mask_figure: mask_figure(rec, yaws, a.mask_figure, a.person)


if __name__ == '__main__':
    main()
