"""The lab's bookkeeping on top of the evaluation records (`facecloak.report`): the levers' table and figure, the
test-split table, and labels placed beside points without overlap. Not part of the package: the experiment scripts
here import it (`import lab`, this folder is on their path), as do the result cells of nbs/06b_report.ipynb.

    lever_table(recs, base, methods)    each lever paired per person against `base` (`facecloak.report.paired`)
    plot_levers(recs, base, methods)    those differences person by person, and protection against face SSIM
    split_table(recs, default, loo)     the test split's report table over the people every record holds complete
    label_points(ax, xy, texts)         a label beside each point, none overlapping another label, a point or the edge
"""
from __future__ import annotations

import numpy as np

from facecloak.report import by_box, method_label, paired, per_person


def _obstacles(ax, P, px) -> tuple[np.ndarray, np.ndarray]:
    "Display-pixel points a label should not cover: the points `P`, every scatter point and marker, and points every 3 px along each line."
    dots = [P] + [ax.transData.transform(np.asarray(c.get_offsets(), dtype=float)) for c in ax.collections
                  if len(c.get_offsets()) and c.get_offset_transform() == ax.transData]
    dots += [ax.transData.transform(np.column_stack([l.get_xdata(orig=False), l.get_ydata(orig=False)]).astype(float))
             for l in ax.lines if l.get_marker() not in (None, '', 'None', ' ') and len(l.get_xdata())]     # the lines' markers
    along = []
    for l in ax.lines:
        xy = ax.transData.transform(np.column_stack([l.get_xdata(orig=False), l.get_ydata(orig=False)]).astype(float))
        for p, q in zip(xy[:-1], xy[1:]):
            k = max(1, int(np.hypot(*(q - p)) / (3 * px)))
            along.append(p + np.linspace(0, 1, k + 1)[:, None] * (q - p))
    return np.concatenate(dots), (np.concatenate(along) if along else np.zeros((0, 2)))


def label_points(ax, xy, texts, *, fontsize: float = 7, gap: float = 5, line_from: float = 9, **kw) -> list:
    """Annotate each point (x, y) of `xy` (data coordinates) with its text in `texts`, placed greedily (the most crowded
    point first) at the nearest spot where the label covers no label placed before, no point and no line, inside the
    axes; a label placed away from its point gets a thin line to it. Call it after the figure's layout is final (after
    `tight_layout`): the offsets are in points, so the figure may then be saved at any dpi. Returns the annotations."""
    fig = ax.figure
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    XY = np.asarray(xy, dtype=float).reshape(-1, 2)
    P = ax.transData.transform(XY)                                                   # display pixels
    box = ax.get_window_extent(r)
    px = fig.dpi / 72                                                                # pixels per point
    dots, along = _obstacles(ax, P, px)
    sizes = []
    for t in texts:
        probe = ax.text(0, 0, t, fontsize=fontsize, **kw)
        e = probe.get_window_extent(r); probe.remove()
        sizes.append((e.width + 2 * px, e.height))
    inside = lambda b, Q, m: int(((Q[:, 0] > b[0] - m) & (Q[:, 0] < b[2] + m) & (Q[:, 1] > b[1] - m) & (Q[:, 1] < b[3] + m)).sum())
    hit = lambda a, b: a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
    crowd = [int((np.hypot(*(P - P[i]).T) < 60 * px).sum()) for i in range(len(P))]
    placed, out = [], [None] * len(P)
    for i in sorted(range(len(P)), key=lambda i: (-crowd[i], i)):
        (x, y), (w, h) = P[i], sizes[i]
        best = None
        for d in [gap * px * k for k in (1, 2, 3, 4, 6, 8, 11, 15, 20, 26, 34, 44)]:
            for ux, uy in ((1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, 1), (1, -1), (-1, -1), (1, .5), (-1, .5), (1, -.5), (-1, -.5)):
                x0 = x + ux * d + (0 if ux > 0 else -w if ux < 0 else -w / 2)
                y0 = y + uy * d + (0 if uy > 0 else -h if uy < 0 else -h / 2)
                b = (x0, y0, x0 + w, y0 + h)
                if b[0] < box.x0 or b[2] > box.x1 or b[1] < box.y0 or b[3] > box.y1: continue
                cost = 100 * sum(hit(b, o) for o in placed) + 10 * inside(b, dots, 5 * px) + inside(b, along, px)
                far = np.hypot(np.maximum(0, np.maximum(b[0] - P[:, 0], P[:, 0] - b[2])), np.maximum(0, np.maximum(b[1] - P[:, 1], P[:, 1] - b[3])))
                cost += 50 * int((np.delete(far, i) <= far[i] + 2 * px).any())     # nearer another point than its own: misread
                if best is None or cost < best[0]: best = (cost, b, d)
                if cost == 0: break
            if best is not None and best[0] == 0: break
        if best is None: best = (0, (x + gap * px, y - h / 2, x + gap * px + w, y + h / 2), 0)     # wider than the axes
        _, b, d = best
        placed.append(b)
        arrow = dict(arrowstyle='-', color='grey', lw=.5, shrinkA=0, shrinkB=3) if d > line_from * px else None
        out[i] = ax.annotate(texts[i], tuple(XY[i]), xytext=((b[0] + px - x) / px, (b[1] - y) / px), textcoords='offset points',
                             ha='left', va='bottom', fontsize=fontsize, arrowprops=arrow, **kw)
    return out


def lever_table(recs: list, base: str, methods: list, **kw) -> list[dict]:
    "`paired(..., base, m)` for each method `m` of `methods`, found in whichever record of `recs` holds it."
    find = lambda m: next((r for r in recs if any(x['method'] == m for x in r['records'])), None)
    rb, out = find(base), []
    if rb is None: raise ValueError(f"no record holds the baseline {base!r}")
    for m in methods:
        rm = find(m)
        if rm is None: raise ValueError(f"no record holds method {m!r}")
        q = [x for x in rm['records'] if x['kind'] == 'quality' and x['method'] == m]
        out.append(dict(paired(rb, base, m, other=rm, **kw), ssim_face=float(np.mean([x['ssim_face'] for x in q])),
                        learn_s=float(np.mean([x['learn_s'] for x in q])), apply_s=float(np.mean([x['apply_s'] for x in q]))))
    return out


def _mean_q(rec, m, k='ssim_face'): return float(np.mean([x[k] for x in rec['records'] if x['kind'] == 'quality' and x['method'] == m]))


def plot_levers(recs: list, base: str, methods: list, labels: dict | None = None, title: str = '', numbered: bool | None = None, **kw):
    """Per-person paired differences against `base` per lever (a dot per person, the mean ± standard error in red), and
    every method's protection against its face SSIM (see `lever_table`). Methods are named by `labels`, else in words
    (`facecloak.report.method_label`); with more than 6 levers (or `numbered`) the points of the second panel carry the
    lever's number, which the first panel's names end with. Returns the figure and `lever_table`'s rows."""
    import matplotlib.pyplot as plt
    name = lambda m: (labels or {}).get(m) or method_label(m)
    rows = lever_table(recs, base, methods, **kw)
    numbered = len(methods) > 6 if numbered is None else numbered
    tag = lambda k, m: str(k + 1) if numbered else name(m)
    find = lambda m: next(r for r in recs if any(x['method'] == m for x in r['records']))
    box = kw.get('box', 'black') or 'all'          # per_person's default is the black-box targets
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 0.42 * len(methods) + 2.4), gridspec_kw=dict(width_ratios=(1.2, 1)))
    pb = per_person(find(base), base, **kw)
    for i, (m, r) in enumerate(zip(methods, rows)):
        pm = per_person(find(m), m, **kw)
        d = [pm[p] - pb[p] for p in pb if p in pm]
        a1.scatter(d, i + np.random.default_rng(i).uniform(-.15, .15, len(d)), s=9, alpha=.5, color='grey')
        a1.errorbar(r['diff'], i, xerr=r['se'], fmt='o', color='C3', capsize=3)
    a1.axvline(0, color='k', lw=.8)
    a1.set_yticks(range(len(methods)), [f'{name(m)}  ({k + 1})' if numbered else name(m) for k, m in enumerate(methods)], fontsize=8)
    a1.set(xlabel=f'{box}-box top-1 protection, minus the reference\n(per person; reference: {name(base)})', title=title)
    a2.scatter(_mean_q(find(base), base), rows[0]['base_mean'] if rows else np.nan, s=90, marker='*', color='k', label=name(base), zorder=3)
    for k, r in enumerate(rows): a2.scatter(r['ssim_face'], r['mean'], s=16, color=f'C{k % 10}')
    a2.set(xlabel='face-crop SSIM', ylabel=f'{box}-box top-1 protection', title='protection vs visibility')
    a2.legend(fontsize=7, loc='best')
    a2.margins(.1); a2.grid(alpha=.3); fig.tight_layout()
    label_points(a2, [(r['ssim_face'], r['mean']) for r in rows], [tag(k, m) for k, m in enumerate(methods)])
    return fig, rows


def complete_people(rec: dict) -> set:
    "The people of `rec` with a quality record for every method of its config (a finished unit each)."
    have = {}
    for x in rec['records']:
        if x['kind'] == 'quality': have.setdefault(x['person'], set()).add(x['method'])
    return {p for p, ms in have.items() if set(rec['config']['methods']) <= ms}


def split_table(recs: list, default: str, loo: dict | list | None = None) -> tuple[list[dict], int]:
    """One row per method of `recs` over the people complete in all of them: black-box top-1 clean / JPEG q75 / q50,
    white-box, the LOO mean (`loo`: a `mode='loo'` record or a list of them; a method's mean comes from the first that
    ran it), face SSIM, learn and apply seconds, and `vs_default` (`paired` black-box against `default`). Returns the
    rows and the number of people."""
    loos = [] if loo is None else [l for l in (loo if isinstance(loo, list) else [loo]) if l is not None]
    people = set.intersection(*[complete_people(r) for r in recs])
    recs = [dict(r, records=[x for x in r['records'] if x['person'] in people]) for r in recs]
    home = {m: r for r in recs for m in r['config']['methods']}
    out = []
    for m, r in home.items():
        row = dict(method=m, people=len(per_person(r, m, box=None)))
        for cond in r['config']['conditions']:
            b = next((x for x in by_box(r, cond) if x['method'] == m), {})
            row[f'black_{cond}'] = b.get('top1_black')
            if cond == 'clean': row.update(white=b.get('top1_white'), **{k: b.get(k) for k in ('ssim_face', 'learn_s', 'apply_s')})
        src = next((l for l in loos if m in l['config']['methods']), None)
        l = {p: v for p, v in per_person(src, m, box=None).items() if p in people} if src else {}
        row.update(loo=float(np.mean(list(l.values()))) if l else None, loo_people=len(l))
        if default in home and m != default: row['vs_default'] = paired(home[default], default, m, other=r)
        out.append(row)
    return out, len(people)
