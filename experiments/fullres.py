"""Issue #14: protection against face quality at full resolution, per mask (pixel, band-limited, visibility term).

    python experiments/fullres.py [--out figures/eval/fullres_tradeoff.png]

Reads the development-split records of experiments/fullres.md (a missing one is reported and left out) and prints
a markdown table: for every (method, ε) its black-box top-1 protection (clean and after JPEG q75), white-box top-1,
its face SSIM and PSNR at the photo's own size on the large portraits (on the first 6, which every run measured, and
on all 56 CelebA-HQ portraits where a run measured them: `portrait_ssim_face_each`, `portrait_ssim_face`), and the paired
difference against the old default (`facecloak` at 8/255 in these records: no prior, no mixed batches) and against
issue #13's default (`facecloak[init=prior,mix=4]` at 8/255; these records were made while the visibility term
defaulted to 0, so that spec ran without it, and `facecloak[init=prior,mix=4,visibility=1]` is today's default)
over the people both hold, ± its standard error, with the people moved up / down. The figure plots black-box protection against full-resolution face SSIM, one line per mask
family through its budgets.
"""
import argparse, sys
from pathlib import Path

import numpy as np

RECORDS = ['data/eval/dev24_fullres.json.gz', 'data/eval/dev24_fullres_eps11.json.gz', 'data/eval/dev24_uv.json.gz',
           'data/eval/dev24_fullres_eps8b.json.gz', 'data/eval/dev24_fullres_eps8c.json.gz',
           'data/eval/dev24_fullres_eps8d.json.gz', 'data/eval/dev24_fullres_new.json.gz',
           'data/eval/dev24_fullres_sprior.json.gz', 'data/eval/dev24_fullres_s07.json.gz',
           'data/eval/dev24_fullres_vis.json.gz', 'data/eval/dev24_fullres_vis4.json.gz',
           'data/eval/dev24_fullres_visprior.json.gz', 'data/eval/dev24_fullres_recipe.json.gz',
           'data/eval/dev24_fullres_mix8.json.gz', 'data/eval/dev24_pull.json.gz', 'data/eval/dev24_rank.json.gz',
           'data/eval/dev24_refine_vis.json.gz']
RECIPE = 'facecloak[init=experiments/prior_vis3.mask,mix=8,visibility=4,steps=120]'   # the full-size recipe (56 portraits)
RANK = 'facecloak[init=prior,mix=4,visibility=1,w_self=0,w_similar=0,extra_losses={"rank":1.0}]'   # issue #13: the rank term
REFINE = 'facecloak[visibility=4,refine=5,refine_visibility=4]'   # the refine dial with the visibility term (today's default otherwise)
OLD, NEW = ('facecloak', 8.0), ('facecloak[init=prior,mix=4]', 8.0)      # the default before and since issue #13 (visibility 0)
PAIRS = [   # (variant, what it is compared with): printed paired below the table
    ('facecloak[parameterisation=smooth,band=0.5,init=experiments/prior_smooth05.mask,mix=4]', 'facecloak[parameterisation=smooth,band=0.5,init=prior,mix=4]'),
    ('facecloak[parameterisation=smooth_uv,band=0.4,init=experiments/prior_smooth05.mask,mix=4]', 'facecloak[parameterisation=smooth_uv,band=0.4,init=prior,mix=4]'),
    ('facecloak[parameterisation=smooth,band=0.7,init=prior,mix=4]', 'facecloak[parameterisation=smooth,band=0.5,init=prior,mix=4]'),
    ('facecloak[parameterisation=smooth,band=0.7,init=prior,mix=4]', 'facecloak[parameterisation=smooth,band=0.7]'),
    ('facecloak[init=prior,mix=4,visibility=3]', 'facecloak[parameterisation=smooth,band=0.5,init=prior,mix=4]'),
    ('facecloak[init=prior,mix=4,visibility=3]', 'facecloak[init=prior,mix=4,visibility=1]'),
    ('facecloak[init=prior,mix=4,visibility=4,steps=120]', 'facecloak[init=prior,mix=4,visibility=4]'),
    ('facecloak[init=experiments/prior_vis3.mask,mix=4,visibility=1]', 'facecloak[init=prior,mix=4,visibility=1]'),
    ('facecloak[init=experiments/prior_vis3.mask,mix=4,visibility=3]', 'facecloak[init=prior,mix=4,visibility=3]'),
    (RECIPE, 'facecloak[init=prior,mix=4,visibility=1]'), (RECIPE, 'facecloak[init=prior,mix=4,visibility=4,steps=120]'),
    (RECIPE, 'facecloak[init=experiments/prior_vis3.mask,mix=4,visibility=3]'),
    ('facecloak[init=prior,mix=8,visibility=1]', 'facecloak[init=prior,mix=4,visibility=1]')] + [
    (f'facecloak[init=prior,mix=4,visibility=1,pull={w}]', 'facecloak[init=prior,mix=4,visibility=1]') for w in (0.1, 0.3)] + [
    (RANK, 'facecloak[init=prior,mix=4,visibility=1]')] + [
    (m, 'facecloak[init=prior,mix=4,visibility=1]') for m in (REFINE, 'facecloak[refine=5,refine_visibility=4]', 'facecloak[refine=5]')] + [
    (REFINE, 'facecloak[refine=5]'), ('facecloak[refine=5,refine_visibility=4]', 'facecloak[refine=5]')]
VISP = [f'facecloak[init=experiments/prior_vis3.mask,mix=4,visibility={k}]' for k in (1, 3)]
VIS = ['facecloak[init=prior,mix=4]'] + [f'facecloak[init=prior,mix=4,visibility={k}]' for k in (1, 3, 4)]
FAMILIES = {"pixel mask, prior + mix 4: visibility term 0, 1 (the default), 3, 4 (ε 8)": VIS,
            'pixel mask, visibility prior + mix 4: visibility term 1, 3 (ε 8)': VISP}   # drawn as one line each
LABELS = {'facecloak': 'pixel mask, zero start, no mixed batches',
          'facecloak[init=prior,mix=4]': "pixel mask, prior + mix 4, no visibility term",
          'facecloak[parameterisation=smooth,band=0.5,init=prior,mix=4]': 'band-limited σ 0.5, prior + mix 4',
          'facecloak[parameterisation=smooth_uv,band=0.4,init=prior,mix=4]': '3D surface, band-limited σ 0.4, prior + mix 4',
          'facecloak[parameterisation=smooth,band=0.5,init=experiments/prior_smooth05.mask,mix=4]': 'band-limited σ 0.5, band-limited prior + mix 4',
          'facecloak[parameterisation=smooth_uv,band=0.4,init=experiments/prior_smooth05.mask,mix=4]': '3D surface, band-limited σ 0.4, band-limited prior + mix 4',
          'facecloak[parameterisation=smooth,band=0.7,init=prior,mix=4]': 'band-limited σ 0.7, prior + mix 4',
          'facecloak[init=prior,mix=4,visibility=1]': 'pixel mask, prior + mix 4, visibility term 1 (default today)',
          'facecloak[init=prior,mix=4,visibility=3]': 'pixel mask, prior + mix 4, visibility term 3',
          'facecloak[init=prior,mix=4,visibility=4]': 'pixel mask, prior + mix 4, visibility term 4',
          'facecloak[init=prior,mix=4,visibility=4,steps=120]': 'pixel mask, prior + mix 4, visibility term 4, 120 steps',
          'facecloak[init=experiments/prior_vis3.mask,mix=4,visibility=1]': 'pixel mask, visibility prior + mix 4, visibility term 1',
          'facecloak[init=experiments/prior_vis3.mask,mix=4,visibility=3]': 'pixel mask, visibility prior + mix 4, visibility term 3',
          RECIPE: 'pixel mask, visibility prior + mix 8, visibility term 4, 120 steps',
          'facecloak[init=prior,mix=8,visibility=1]': 'pixel mask, prior + mix 8, visibility term 1',
          **{f'facecloak[init=prior,mix=4,visibility=1,pull={w}]': f'pixel mask, prior + mix 4, visibility term 1, pulled toward the prior ({w})'
             for w in (0.1, 0.3)},
          REFINE: 'visibility term 4, applied with 5 per-photo steps weighing visibility 4 at the photo\'s own scale (refine dial)',
          'facecloak[refine=5,refine_visibility=4]': "the default mask + 5 per-photo steps weighing visibility 4 (refine dial)",
          'facecloak[refine=5]': "the default mask + 5 per-photo steps (refine dial, no visibility term)",
          RANK: 'pixel mask, prior + mix 4, visibility term 1, the rank term in place of self and similar',
          'facecloak[parameterisation=smooth_uv,band=0.5,init=prior]': '3D surface, band-limited σ 0.5, from the prior',
          'facecloak[parameterisation=smooth_uv,band=0.4,init=prior]': '3D surface, band-limited σ 0.4, from the prior', 'facecloak[parameterisation=smooth,band=0.7]': 'band-limited, σ 0.7 px',
          'facecloak[perceptual=0.6]': 'pixel mask + perceptual map 0.6',
          'facecloak[parameterisation=smooth,band=0.7,perceptual=0.6]': 'band-limited σ 0.7 + perceptual 0.6',
          'facecloak[parameterisation=uv]': "on the face's 3D surface (uv, experiments/uv.md)",
          'facecloak[parameterisation=smooth,band=0.5]': 'band-limited, σ 0.5 px',
          'facecloak[parameterisation=smooth_uv,band=0.5]': 'on the 3D surface, band-limited σ 0.5',
          'facecloak[parameterisation=smooth_uv,band=0.4]': 'on the 3D surface, band-limited σ 0.4',
          'facecloak[parameterisation=smooth,band=0.5,init=prior]': 'band-limited σ 0.5, started from the prior'}


def _paired(recs, base, rec, m, e, box='black'):
    "Paired difference of (m, e) in `rec` against `base` in the first record that holds it (`box` models), or {}."
    from facecloak.evaluate import per_person
    ref = next((r for r in recs if any(x['method'] == base[0] and x['epsilon'] == base[1] for x in r['records'])), None)
    if ref is None or (m, e) == base: return {}
    a, b = per_person(ref, base[0], epsilon=base[1], box=box), per_person(rec, m, epsilon=e, box=box)
    d = np.array([b[p] - a[p] for p in b if p in a])
    if len(d) < 2: return {}
    return dict(paired_n=len(d), diff=float(d.mean()), se=float(d.std(ddof=1) / np.sqrt(len(d))),
                up=int((d > 1e-9).sum()), down=int((d < -1e-9).sum()))


def _first6(q):
    "A quality record's face SSIM on the first 6 portraits: what every run measured (a run on more portraits keeps each one's)."
    return float(np.mean(q['portrait_ssim_face_each'][:6])) if 'portrait_ssim_face_each' in q else q['portrait_ssim_face']


def rows(recs, bases=(OLD, NEW)):
    "One row per (method, ε) found in `recs`, paired against each of `bases` where a record holds it (keys `vs0`, `vs1`)."
    from facecloak.evaluate import per_person
    out, seen = [], set()
    for rec in recs:
        for m, e in sorted({(x['method'], x['epsilon']) for x in rec['records']} - seen):   # a (method, ε) once
            seen.add((m, e))
            q = [x for x in rec['records'] if x['kind'] == 'quality' and x['method'] == m and x['epsilon'] == e]
            pp = {c: per_person(rec, m, condition=c, epsilon=e) for c in ('clean', 'jpeg75')}
            row = dict(method=m, epsilon=e, people=len(pp['clean']), black=float(np.mean(list(pp['clean'].values()))),
                       jpeg75=float(np.mean(list(pp['jpeg75'].values()))) if pp['jpeg75'] else float('nan'),
                       white=float(np.mean(list(per_person(rec, m, box='white', epsilon=e).values()) or [np.nan])),
                       ssim_face=float(np.mean([x['ssim_face'] for x in q])),
                       portrait_ssim=float(np.mean([_first6(x) for x in q])),
                       portrait_ssim_all=float(np.mean([x['portrait_ssim_face'] for x in q]))
                       if all(x.get('portrait_n', 0) >= 56 for x in q) else float('nan'),
                       portrait_psnr=float(np.mean([x['portrait_psnr_face'] for x in q])),
                       learn_s=float(np.mean([x['learn_s'] for x in q])))
            for k, base in enumerate(bases): row[f'vs{k}'] = _paired(recs, base, rec, m, e)
            out.append(row)
    return out


def _or_dash(v): return '—' if np.isnan(v) else f'{v:.3f}'


def _fmt(p): return f"{p['diff']:+.3f} ± {p['se']:.3f} ({p['up']} / {p['down']}, n {p['paired_n']})" if p else '—'


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--out', default=None, help='the trade-off figure (PNG)')
    a = ap.parse_args(argv)
    from facecloak.evaluate import load_records
    recs = load_records(RECORDS, warn=lambda m: print(m, file=sys.stderr))
    if not recs: raise SystemExit('no record found: run the commands in experiments/fullres.md')
    rs = rows(recs)
    print("| mask | ε | people | black-box top-1 | vs old default ± SE (up / down) | vs issue #13's default ± SE (up / down) | "
          'after JPEG q75 | white-box | face SSIM, full resolution (6 portraits) | (all 56) | face PSNR, full resolution | face SSIM, LFW 250 px | learn s |')
    print('|---|---|---|---|---|---|---|---|---|---|---|---|---|')
    for r in rs:
        print(f"| {LABELS.get(r['method'], r['method'])} | {r['epsilon']:g} | {r['people']} | {r['black']:.3f} | "
              f"{_fmt(r['vs0'])} | {_fmt(r['vs1'])} | "
              f"{r['jpeg75']:.3f} | {r['white']:.3f} | {r['portrait_ssim']:.3f} | {_or_dash(r['portrait_ssim_all'])} | {r['portrait_psnr']:.1f} dB | "
              f"{r['ssim_face']:.3f} | {r['learn_s']:.0f} |")
    print('\n| variant | against | black-box ± SE (up / down) | white-box ± SE (up / down) |\n|---|---|---|---|')
    for m, base in PAIRS:
        rec = next((r for r in recs if any(x['method'] == m for x in r['records'])), None)
        if rec is None: continue
        print(f"| {LABELS.get(m, m)} | {LABELS.get(base, base)} | {_fmt(_paired(recs, (base, 8.0), rec, m, 8.0))} | "
              f"{_fmt(_paired(recs, (base, 8.0), rec, m, 8.0, box='white'))} |")
    if a.out:
        import matplotlib; matplotlib.use('Agg')
        import matplotlib.pyplot as plt
        from lab import label_points
        fig, ax = plt.subplots(figsize=(14, 6.5))
        colours = plt.get_cmap('tab20').colors
        marks = []                           # (x, y, text): the budgets other than 8/255 and the families' settings, placed at the end
        drawn = {m for ms in FAMILIES.values() for m in ms} - {NEW[0]}     # the families' own lines show these (the default has its ε line)
        for k, m in enumerate(dict.fromkeys(r['method'] for r in rs if r['method'] not in drawn)):     # a colour and a marker each
            pts = sorted((r['portrait_ssim'], r['black'], r['epsilon']) for r in rs if r['method'] == m)
            star = 'refine=' in m              # the refine dial (per-photo steps): stars, the goal's point in red
            ax.plot([p[0] for p in pts], [p[1] for p in pts], '-', marker='*' if star else 'osD^v'[k % 5], ms=13 if star else 6,
                    color='red' if m == REFINE else colours[(2 * k) % 20 + (k >= 10)], label=LABELS.get(m, m))
            marks += [(x, y, f'ε {e:g}') for x, y, e in pts if e != 8]
        for (label, ms), style in zip(FAMILIES.items(), ('k-o', 'm-s')):         # one knob at ε 8: a line through its settings
            pts = [next(((r['portrait_ssim'], r['black']) for r in rs if (r['method'], r['epsilon']) == (m, 8.0)), None) for m in ms]
            pts = [(p, m) for p, m in zip(pts, ms) if p is not None]
            if len(pts) < 2: continue
            ax.plot([p[0] for p, _ in pts], [p[1] for p, _ in pts], style, lw=2, alpha=.6, label=label)
            marks += [(x, y, 'vis. ' + (m.split('visibility=')[1].rstrip(']').split(',')[0] if 'visibility=' in m else '0')) for (x, y), m in pts]
        ax.axvline(0.97, color='grey', ls=':', lw=1)
        for base, ls in ((OLD, ':'), (NEW, '--')):      # the goal: right of 0.97, above the default (today's: dashed)
            d0 = next((r['black'] for r in rs if (r['method'], r['epsilon']) == base), None)
            if d0 is not None: ax.axhline(d0, color='grey', ls=ls, lw=1)
        ax.set(xlabel='face SSIM at full resolution (the first 6 CelebA-HQ 1024² portraits)', ylabel='black-box top-1 protection',
               title='protection vs visibility at full size (development split, ε 8/255 unless marked)')
        ax.title.set_fontsize(10)
        ax.legend(fontsize=7, loc='upper left', bbox_to_anchor=(1.01, 1), frameon=False); ax.grid(alpha=.3)
        fig.subplots_adjust(left=.06, right=.5, bottom=.09, top=.94)        # the right half: the legend
        label_points(ax, [m[:2] for m in marks], [m[2] for m in marks], fontsize=6.5)      # none over another, a point or a line
        Path(a.out).parent.mkdir(parents=True, exist_ok=True); fig.savefig(a.out, dpi=110, bbox_inches='tight')   # the legend beside it
        print(f'figure: {a.out}', file=sys.stderr)


if __name__ == '__main__':
    main()
