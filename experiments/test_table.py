"""The test-split table of issue #13 from the test records (prints markdown, writes a PNG).

    python experiments/test_table.py [--default SPEC] [--out figures/eval/test_split.png]

Every method of the test-split records (data/eval/test_main.json.gz, test_new.json.gz, test_vis.json.gz and test_mix8.json.gz: 62 LFW people never
used for a decision) gets one row: people, black-box top-1 identification protection after the attacker's JPEG
q90 read (clean), after JPEG q75 and q50, white-box top-1, the leave-one-model-out mean (test_loo_vis.json.gz for
today's default, test_loo.json.gz for issue #13's: where the method was run with `--mode loo`), face SSIM, learning seconds and seconds per photo. The last column is the
black-box difference against --default, paired per person, ± its standard error over people (people up / down).
Only people that every record holds complete are counted, so the rows compare the same people.

Every method is named by the spec it ran, so the names mean the same under today's code: test_main was made by the
code before the default changed (commit d82a822) and its rows were renamed once to what they ran
(`facecloak` -> `facecloak[init=zero,mix=0]`, ...; `facecloak.evaluate.rename_methods`, noted in the record's
`renamed`). The visibility term's default changed after test_new, test_loo and test_refine_new were made
(0 -> 1, issue #14): their learnt methods are read with `facecloak.evaluate.pin_defaults`, which spells the value
they ran with (`facecloak[init=prior,mix=4]` -> `facecloak[init=prior,mix=4,visibility=0]`). Today's default,
`facecloak[init=prior,mix=4,visibility=1]` (test_vis), is the row the others are paired against.

A second table puts the refine dial started from the previous default's mask (test_refine_new.json.gz) beside that
default (test_new.json.gz), over the people both hold complete; a third pairs it per person with the same dial
started from the old default's mask (test_main.json.gz), over the people both records hold.

The refine dial from today's default's mask (test_refine_vis.json.gz) beside today's default (test_vis), over the
people both hold; and per K paired with the dial from the previous default's mask (test_refine_new).

The levers' ablations: today's default beside itself with one lever changed (test_levers.json.gz: lever 2's elastic
deformation and model dropout, lever 4's uniform budget), over the people both hold. Lever 3 (a bigger ensemble) needs
no run of its own: each leave-one-model-out fold of today's default learns with the five models other than the one it
holds out, so on that model it is the default with two more surrogates; it is paired per person and per held-out model
with the fixed three-surrogate mask (test_vis).
"""
import numpy as np
import argparse, sys
from pathlib import Path

RECORDS = ['data/eval/test_main.json.gz', 'data/eval/test_new.json.gz', 'data/eval/test_vis.json.gz', 'data/eval/test_mix8.json.gz']
LOOS = ['data/eval/test_loo_vis.json.gz', 'data/eval/test_loo.json.gz']   # today's default's folds, issue #13's
REFINE = 'data/eval/test_refine_new.json.gz'   # the refine dial from the previous default's mask (its own people)
REFINE_VIS = 'data/eval/test_refine_vis.json.gz'   # the refine dial from today's default's mask (its own people)
REFINE_VIS4 = 'data/eval/test_refine_vis4.json.gz'   # issue #14: a visibility-4 mask, 5 refine steps weighing visibility 4
QUIET = 'facecloak[init=prior,mix=4,visibility=4,refine=5,refine_visibility=4]'   # ... its spec
LEVERS = 'data/eval/test_levers.json.gz'       # levers 2 and 4 switched on or off in today's default (its own people)
FOLDS = ('mobilefacenet_paddlex', 'edgeface_xs', 'facenet_casia')   # the black-box models, each a LOO fold
DEFAULT = 'facecloak[init=prior,mix=4,visibility=1]'   # learn_mask's defaults since issue #14's visibility term, spelled out
PREVIOUS = 'facecloak[init=prior,mix=4,visibility=0]'  # ... before it (issue #13's prior and mixing): test_new
OLD = 'facecloak[init=zero,mix=0,visibility=0]'       # ... before issue #13 (a zero start, the person's own photos)
LABELS = {DEFAULT: 'facecloak: prior start, 4 others per batch, visibility term',   # the figure's words
          PREVIOUS: 'prior start, 4 others per batch, no visibility term',
          OLD: 'zero start, no mixed batches', f'{OLD[:-len(",visibility=0]")]},refine=5,visibility=0]': 'zero start + refine 5 steps per photo',
          f'{OLD[:-len(",visibility=0]")]},refine=20,visibility=0]': 'zero start + refine 20 steps per photo',
          'facecloak[init=prior,mix=0,visibility=0]': 'prior start, no mixed batches',
          'facecloak[init=prior,mix=8,visibility=1]': 'prior start, 8 others per batch, visibility term'}


def _print(rs, n, default):
    f = lambda v, d=3: '–' if v is None else f'{v:.{d}f}'
    print(f'{n} test people complete in every record.\n')
    print('| method | black-box | JPEG q75 | JPEG q50 | white-box | LOO (people) | face SSIM | learn s | apply s/photo '
          f'| black-box vs `{default}` ± SE (up / down) |')
    print('|---|---|---|---|---|---|---|---|---|---|')
    for r in rs:
        v = r.get('vs_default')
        vs = f"{v['diff']:+.3f} ± {v['se']:.3f} ({v['up']} / {v['down']})" if v else '—'
        loo = f"{r['loo']:.3f} ({r['loo_people']})" if r['loo'] is not None else '–'
        print(f"| `{r['method']}` | {f(r.get('black_clean'))} | {f(r.get('black_jpeg75'))} | {f(r.get('black_jpeg50'))} "
              f"| {f(r['white'])} | {loo} | {f(r['ssim_face'])} | {f(r['learn_s'], 1)} | {f(r['apply_s'], 2)} | {vs} |")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--default', default=DEFAULT, help='the method the others are paired against')
    ap.add_argument('--out', default=None)
    a = ap.parse_args(argv)
    from facecloak.evaluate import load_record, load_records, paired, pin_defaults
    from lab import split_table
    pin = lambda r: None if r is None else pin_defaults(r)          # every method under the spec it ran
    recs = [pin(r) for r in load_records(RECORDS, warn=lambda m: print(m, file=sys.stderr))]
    if not recs: sys.exit('no test-split record found')
    rs, n = split_table(recs, a.default, loo=[pin(load_record(p)) for p in LOOS])
    _print(rs, n, a.default)
    ref, prev = pin(load_record(REFINE)), next((r for r in recs if PREVIOUS in r['config']['methods']), None)
    if ref is not None and prev is not None:
        rr, nr = split_table([prev, ref], PREVIOUS)
        print(f'\nThe refine dial from `{PREVIOUS}`:\n')
        _print(rr, nr, PREVIOUS)
        old = next((r for r in recs if any(x['method'] == 'facecloak[init=zero,mix=0,refine=5,visibility=0]' for x in r['records'])), None)
        if old is not None:
            print('\n| refine K | from the old mask | from the previous default\'s | its start − old ± SE (up / down) | after JPEG q75 |\n|---|---|---|---|---|')
            for k in (5, 20):
                p = {c: paired(old, f'facecloak[init=zero,mix=0,refine={k},visibility=0]', f'{PREVIOUS[:-len(",visibility=0]")]},refine={k},visibility=0]',
                               other=ref, condition=c)
                     for c in ('clean', 'jpeg75')}
                print(f"| {k} | {p['clean']['base_mean']:.3f} | {p['clean']['mean']:.3f} | {p['clean']['diff']:+.3f} ± {p['clean']['se']:.3f} "
                      f"({p['clean']['up']} / {p['clean']['down']}, n {p['clean']['n']}) | {p['jpeg75']['diff']:+.3f} ± {p['jpeg75']['se']:.3f} |")
    vis = next((r for r in recs if DEFAULT in r['config']['methods']), None)
    rv = pin(load_record(REFINE_VIS))
    if rv is not None and vis is not None:
        rr, nr = split_table([vis, rv], DEFAULT)
        print(f'\nThe refine dial from `{DEFAULT}`:\n')
        _print(rr, nr, DEFAULT)
        if ref is not None:
            print('\n| refine K | from the previous default\'s mask | from today\'s | today − previous ± SE (up / down) | after JPEG q75 |\n|---|---|---|---|---|')
            for k in (5, 20):
                p = {c: paired(ref, f'{PREVIOUS[:-len(",visibility=0]")]},refine={k},visibility=0]', f'{DEFAULT[:-1]},refine={k}]',
                               other=rv, condition=c) for c in ('clean', 'jpeg75')}
                print(f"| {k} | {p['clean']['base_mean']:.3f} | {p['clean']['mean']:.3f} | {p['clean']['diff']:+.3f} ± {p['clean']['se']:.3f} "
                      f"({p['clean']['up']} / {p['clean']['down']}, n {p['clean']['n']}) | {p['jpeg75']['diff']:+.3f} ± {p['jpeg75']['se']:.3f} |")
    rq = pin(load_record(REFINE_VIS4))
    if rq is not None and rv is not None and vis is not None:
        rr, nr = split_table([vis, rv, rq], DEFAULT)
        print(f'\nIssue #14: the refine dial weighing visibility at the photo\'s own scale, beside the plain dial, from `{DEFAULT}`:\n')
        _print(rr, nr, DEFAULT)
        print('\n| against | condition | black-box ± SE (up / down, n) | face SSIM at full size, 6 portraits |\n|---|---|---|---|')
        port = lambda rec, m: np.mean([x['portrait_ssim_face'] for x in rec['records'] if x['kind'] == 'quality' and x['method'] == m
                                       and 'portrait_ssim_face' in x] or [np.nan])
        for base, brec in ((DEFAULT, vis), (f'{DEFAULT[:-1]},refine=5]', rv)):
            for c in ('clean', 'jpeg75', 'jpeg50'):
                p = paired(brec, base, QUIET, other=rq, condition=c)
                print(f"| `{base}` | {c} | {p['diff']:+.3f} ± {p['se']:.3f} ({p['up']} / {p['down']}, n {p['n']}) | {port(rq, QUIET):.3f} |")
    lev = pin(load_record(LEVERS))
    if lev is not None and vis is not None:
        rl, nl = split_table([vis, lev], DEFAULT)
        print(f"\nThe levers' ablations from `{DEFAULT}`:\n")
        _print(rl, nl, DEFAULT)
    loo = pin(load_record(LOOS[0]))
    if loo is not None and vis is not None:
        print('\nLever 3, a bigger ensemble: on each held-out model, the mask learnt with the five other models (its LOO fold) '
              'against the default\'s three surrogates:\n')
        print('| held-out model | three surrogates | five surrogates | five − three ± SE (up / down, n) |\n|---|---|---|---|')
        for t in [*FOLDS, None]:
            p = paired(vis, DEFAULT, DEFAULT, other=loo, targets=None if t is None else [t])
            print(f"| {t or 'mean of the three'} | {p['base_mean']:.3f} | {p['mean']:.3f} | {p['diff']:+.3f} ± {p['se']:.3f} "
                  f"({p['up']} / {p['down']}, n {p['n']}) |")
    if a.out:
        import matplotlib.pyplot as plt
        from facecloak.evaluate import method_label
        from lab import label_points
        fig, ax = plt.subplots(figsize=(9, 6))
        pts = sorted((r for r in rs if r['ssim_face'] is not None and r.get('black_clean') is not None), key=lambda r: r['black_clean'])
        for k, r in enumerate(pts): ax.scatter(r['ssim_face'], r['black_clean'], s=25, color=f'C{k % 10}')
        ax.set(xlabel='face-crop SSIM', ylabel='black-box top-1 protection', ylim=(0, 1.05),
               title=f'test split ({n} people), ε = 8/255, JPEG q90, re-detected')
        ax.set_xlim(0.86, 1.01); ax.grid(alpha=.3); fig.tight_layout()
        label_points(ax, [(r['ssim_face'], r['black_clean']) for r in pts],
                     [LABELS.get(r['method']) or method_label(r['method'], a.default) for r in pts])     # in words, none over another
        Path(a.out).parent.mkdir(parents=True, exist_ok=True); fig.savefig(a.out, dpi=110)
        print(f'figure: {a.out}', file=sys.stderr)

if __name__ == '__main__':
    main()
