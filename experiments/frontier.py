"""Issue #37: protection against visibility and against time, every (method, ε) of one or more `facecloak eval`
records of the same people, as one table and one figure.

    python experiments/frontier.py data/eval/dev24_frontier.json.gz data/eval/dev24_frontier2.json.gz data/eval/dev24_frontier3.json.gz \
        data/eval/dev24_purify.json.gz data/eval/dev24_steps.json.gz data/eval/dev24_robust_steps.json.gz \
        --base 'facecloak@8' --figure figures/frontier.png

A point is a method at one ε (`name@ε` on the command line): its black-box top-1 protection (the mean over people of
the models never used to learn), after JPEG q75 when recorded, its visibility (face SSIM on the LFW probes, face SSIM,
ColorVideoVDP's JOD and NVIDIA FLIP's mean error, the difference seen when flipping between the two, on the face of the
full-size portraits) and its seconds per photo (apply, detection included, on the
evaluation's CPU, which may have been busy: compare times within one record). `--base`: each point against that
one, paired per person (difference ± standard error, people up / down), over the people both have. A method that
appears in several records is read from the first that has it.
"""
import argparse, re, sys

import numpy as np

from facecloak.report import load_record, per_person

BLACK = ('edgeface_xs', 'facenet_casia', 'mobilefacenet_paddlex')   # the three models never used to learn, named: some records add
# an attacker-only model (the adapted recogniser) that is black-box too but is reported on its own (adapted.md)


def points(recs: list) -> dict:
    "{'method@ε': (record, method, ε)}, first record first."
    out = {}
    for rec in recs:
        for r in rec['records']:
            if r['kind'] == 'protection':
                out.setdefault(f"{r['method']}@{r['epsilon']:g}", (rec, r['method'], r['epsilon']))
    return out


def quality(rec, method, eps, key, people=None) -> float:
    v = [r[key] for r in rec['records'] if r['kind'] == 'quality' and r['method'] == method and r['epsilon'] == eps
         and r.get(key) is not None and (people is None or r['person'] in people)]
    return float(np.mean(v)) if v else float('nan')


def protection(rec, method, eps, condition='clean') -> dict:
    return per_person(rec, method, condition=condition, epsilon=eps, targets=BLACK)


def row(pt, base=None) -> dict:
    rec, m, e = pt
    bb = protection(rec, m, e)
    out = dict(people=len(bb), black=float(np.mean(list(bb.values()))) if bb else float('nan'),
               jpeg75=(lambda d: float(np.mean(list(d.values()))) if d else float('nan'))(protection(rec, m, e, 'jpeg75')),
               ssim=quality(rec, m, e, 'ssim_face'), ssim_full=quality(rec, m, e, 'portrait_ssim_face'),
               jod=quality(rec, m, e, 'portrait_jod_face'), flip=quality(rec, m, e, 'portrait_flip_face'),
               seconds=quality(rec, m, e, 'apply_s'))
    if base is not None:
        b = protection(*base)
        d = np.array([bb[p] - b[p] for p in bb if p in b])
        out['paired'] = (float(d.mean()), float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float('nan'),
                         int((d > 1e-9).sum()), int((d < -1e-9).sum()), len(d)) if len(d) else None
    return out


def markdown(pts: dict, base: str | None) -> str:
    f = lambda v, k=3: '–' if v != v else f'{v:.{k}f}'
    head = ('| method | ε (/255) | people | black-box | JPEG q75 | face SSIM (LFW) | face SSIM (full size) | JOD (full size) '
            '| FLIP (full size) | apply s/photo |' + (f' black-box vs `{base}` ± SE (up / down, n) |' if base else ''))
    lines = [head, '|' + '---|' * (head.count('|') - 1)]
    for name, pt in pts.items():
        r = row(pt, pts[base] if base else None)
        p = r.get('paired')
        tail = '' if not base else (' — |' if name == base else
                                    (f' {p[0]:+.3f} ± {p[1]:.3f} ({p[2]} / {p[3]}, {p[4]}) |' if p else ' – |'))
        lines.append(f"| `{pt[1]}` | {pt[2]:g} | {r['people']} | {f(r['black'])} | {f(r['jpeg75'])} | {f(r['ssim'])} "
                     f"| {f(r['ssim_full'])} | {f(r['jod'], 2)} | {f(r['flip'])} | {f(r['seconds'], 2)} |" + tail)
    return '\n'.join(lines)


def short(name: str) -> str:
    "A point's label for the figure (a refine budget in grey levels: `refine_epsilon=0.0314` -> `ε_r=8`)."
    name = re.sub(r'refine_epsilon=([0-9.]+)', lambda m: f'ε_r={float(m.group(1)) * 255:.0f}', name)
    for a, b in [('facecloak', 'fc'), ('visibility_measure=', ''), ('refine_step_frac', 'α/ε'), ('refine_purify', 'purify'), ('visibility_scale', 'at'),
                 ('visibility', 'vis')]: name = name.replace(a, b)
    return name


def figure(pts: dict, path: str):
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from lab import label_points
    rows = {n: row(p) for n, p in pts.items()}
    gen = {n for n in rows if n.startswith('generator')}                       # a feed-forward generator (generator.md)
    plain = {n for n in rows if 'refine' not in n and not n.startswith(('pgd', 'none')) and n not in gen}
    fig, axs = plt.subplots(1, 4, figsize=(21, 5.2))
    panels = [(axs[0], 'ssim', 'face SSIM, LFW probes (250 px): higher is less visible'),
              (axs[1], 'jod', 'JOD, full-size portraits (10 = invisible)'),
              (axs[2], 'flip', 'FLIP, full-size portraits (0 = no difference): lower is less visible'),
              (axs[3], 'seconds', 'seconds per LFW photo (apply, detection included; busy CPU)')]
    for ax, key, label in panels:
        shown = [n for n, r in rows.items() if r[key] == r[key]]
        for n in shown: ax.scatter(rows[n][key], rows[n]['black'], s=30, zorder=3,
                                   c='tab:green' if n in gen else 'tab:blue' if n in plain else 'tab:orange')
        if key == 'seconds': ax.set_xscale('log')
        ax.set_xlabel(label, fontsize=9); ax.set_ylabel('black-box top-1 protection'); ax.grid(alpha=.3)
        ax.margins(0.25, 0.12)
    axs[0].set_title('plain masks (blue, no models at apply) and the refine dial (orange)'
                     + (', the generator (green)' if gen else ''), fontsize=9)
    fig.suptitle('Protection against visibility and time, development split (models never used to learn; ε in /255 after @)', fontsize=11)
    fig.tight_layout()
    for ax, key, _ in panels:
        shown = [n for n, r in rows.items() if r[key] == r[key]]
        label_points(ax, [(rows[n][key], rows[n]['black']) for n in shown], [short(n) for n in shown], fontsize=6.5)
    fig.savefig(path, dpi=110)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('records', nargs='+'); ap.add_argument('--base', help="a point, 'method@ε'")
    ap.add_argument('--figure', help='write the figure here (PNG)')
    a = ap.parse_args(argv)
    recs = []
    for p in a.records:
        r = load_record(p)
        if r is None: sys.exit(f'{p}: no record there')
        recs.append(r)
    pts = points(recs)
    if a.base and a.base not in pts: sys.exit(f"--base {a.base!r} is not a point of these records: {', '.join(pts)}")
    print(markdown(pts, a.base))
    if a.figure: figure(pts, a.figure); print(f'wrote {a.figure}', file=sys.stderr)


if __name__ == '__main__':
    main()
