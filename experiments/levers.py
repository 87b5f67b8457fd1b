"""The lever table and figure of issue #13 from the development-split records (prints markdown, writes a PNG).

    python experiments/levers.py [--box black] [--out figures/eval/levers_dev.png]

Every lever is compared with `facecloak` as these records ran it, the default before issue #13 (the mask started from
zero, no other people in the batches; `facecloak[init=zero,mix=0]` today), person by person over the people both records
hold: mean difference in top-1 identification protection, its standard error over people, and how many
people it moved up and down (`lab.lever_table`, experiments/lab.py). The records are those of the commands in
experiments/levers.md; a missing one is reported and left out.

A second table (lever 1's prior per surrogate family) compares, per target model, each family's prior alone
(dev24_prior_family: learnt with the MobileFaceNets only, or with EdgeFace-XXS only) with the shipped prior alone
(learnt with all three surrogates; dev24_prior), paired per person. It is per target because which models are
white-box differs between those priors.
"""
import argparse, sys
from pathlib import Path

RECORDS = ['data/eval/dev24_refine.json.gz', 'data/eval/dev24_transfer.json.gz', 'data/eval/dev24_prior.json.gz',
           'data/eval/dev24_3dmm.json.gz', 'data/eval/dev24_3dmm_wide.json.gz',
           'data/eval/dev24_uv.json.gz', 'data/eval/dev24_transfer2.json.gz', 'data/eval/dev24_dial.json.gz',
           'data/eval/dev24_levers3b.json.gz', 'data/eval/dev24_levers4.json.gz', 'data/eval/dev24_levers6.json.gz',
           'data/eval/dev24_prior2870.json.gz']
FAMILY = 'data/eval/dev24_prior_family.json.gz'
BENCH = 'data/eval/bench_refine_idle.json'      # python benchmarks/bench_refine.py --people 2 --photos 3 --ks 0,2,5,10,20 (idle)    # the priors per surrogate family, alone
FAMILIES = {'prior[path=experiments/prior_mfn.mask]': 'MobileFaceNet family (ms1m, casia)',
            'prior[path=experiments/prior_edge.mask]': 'EdgeFace family (xxs)'}
TARGETS = ['mobilefacenet_paddlex', 'edgeface_xs', 'facenet_casia', 'mobilefacenet_ms1m', 'mobilefacenet_casia', 'edgeface_xxs']
LEVERS = {'none': 'no protection', 'prior': 'prior alone (no personal learning)',
          'facecloak[init=prior]': 'personal mask started from the prior',
          'facecloak[diversity=+bsr]': '+ block shuffle/rotation (BSR)', 'facecloak[diversity=+sia]': '+ SIA tile transforms',
          'facecloak[model_dropout=0.1]': '+ model dropout 0.1',
          'facecloak[diversity=+elastic]': '+ elastic deformation (DeCowA-style)',
          'facecloak[diversity=+scale]': '+ intensity scaling (SI)', 'facecloak[diversity=+admix]': '+ admix',
          'facecloak[diversity=+elastic+sia]': '+ elastic and SIA together',
          'facecloak[model_dropout=0.1,model_dropout_depth=0.7]': '+ model dropout 0.1, last 30 % of the layers only',
          'facecloak[extra_losses={"feature":1.0}]': '+ feature-level term (mid-layer features, weight 1)',
          'facecloak[steps=150,batch_size=8]': 'more steps and larger batches (150 steps of 8)',
          'facecloak[w_anchor=0,w_similar=0]': 'objective: away from the person only (no anchor, no look-alike)',
          "facecloak[surrogates=('mobilefacenet_ms1m','mobilefacenet_casia','edgeface_xxs','facenet_casia')]":
              'FaceNet CASIA as a fourth surrogate',
          'facecloak[mix=4]': '4 photos of other people in every batch (mixed batches)',
          'facecloak[init=prior,mix=4]': 'started from the prior, and 4 other people in every batch (the default since)',
          'facecloak[init=prior,steps=20]': 'started from the prior, 20 steps only',
          'facecloak[init=prior,mix=8]': 'started from the prior, 8 other people in every batch',
          'facecloak[init=prior,mix=4,mix_pool=1000]': 'started from the prior, 4 of a pool of 1,000 other people in every batch',
          'facecloak[init=prior,mix=8,steps=120]': 'started from the prior, 8 other people in every batch, 120 steps',
          'prior[path=/work/priors/prior2870.mask]': 'a larger prior alone (2,870 people, 2,400 steps of 32)',
          'facecloak[init=/work/priors/prior2870.mask]': 'personal mask started from the larger prior',
          'facecloak[refine=2]': 'refine 2 steps per photo', 'facecloak[refine=5]': 'refine 5 steps per photo',
          'facecloak[refine=10]': 'refine 10 steps per photo', 'facecloak[refine=20]': 'refine 20 steps per photo',
          "facecloak[synth='3dmm']": 'stage 1: the 3D re-posed training set',
          "facecloak[synth={'backend':'3dmm','max_yaw':30,'expression':2.0,'light':0.6}]":
              'stage 1: the wider 3D set (yaw ±30°, expression 2σ, light 0.6)',
          'facecloak[parameterisation=uv]': 'the mask on the face\'s 3D surface',
          'pgd': 'per-photo PGD (60 steps)'}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--box', default='black', choices=['black', 'white', 'all'])
    ap.add_argument('--condition', default='clean'); ap.add_argument('--out', default=None)
    ap.add_argument('--min-people', type=int, default=24, help='levers with fewer people are in the table, not the figure')
    a = ap.parse_args(argv)
    from facecloak.evaluate import load_records
    from lab import label_points, lever_table, plot_levers
    recs = load_records(RECORDS, warn=lambda m: print(m, file=sys.stderr))
    have = {x['method'] for r in recs for x in r['records']}
    methods = [m for m in LEVERS if m in have]
    kw = dict(box=None if a.box == 'all' else a.box, condition=a.condition)
    rows = lever_table(recs, 'facecloak', methods, **kw)
    print(f'| lever | people | facecloak | lever | paired difference ± SE | up / down | face SSIM | learn s | apply s/photo |')
    print('|---|---|---|---|---|---|---|---|---|')
    for r in rows:
        print(f"| {LEVERS[r['method']]} (`{r['method']}`) | {r['n']} | {r['base_mean']:.3f} | {r['mean']:.3f} | "
              f"{r['diff']:+.3f} ± {r['se']:.3f} | {r['up']} / {r['down']} | {r['ssim_face']:.3f} | {r['learn_s']:.1f} | {r['apply_s']:.2f} |")
    fam, shipped = load_records([FAMILY], warn=lambda m: print(m, file=sys.stderr)), next((r for r in recs if any(x['method'] == 'prior' for x in r['records'])), None)
    if fam and shipped is not None and a.condition == 'clean':
        from facecloak.evaluate import paired
        print('\n| target | shipped prior (3 surrogates) | ' + ' | '.join(f'{v} prior (vs shipped ± SE, up / down)' for v in FAMILIES.values())
              + ' |\n|---|---|' + '---|' * len(FAMILIES))
        for t in [TARGETS[:3], *[[x] for x in TARGETS]]:
            ps = [paired(shipped, 'prior', m, other=fam[0], targets=t, box=None) for m in FAMILIES]
            name = 'the three black-box models' if len(t) > 1 else t[0]
            print(f"| {name} | {ps[0]['base_mean']:.3f} | " + ' | '.join(f"{p['mean']:.3f} ({p['diff']:+.3f} ± {p['se']:.3f}, {p['up']} / {p['down']})" for p in ps) + ' |')
    dial = [r for r in rows if r['method'].startswith('facecloak[refine=') or r['method'] == 'pgd']
    if a.out and dial:
        import matplotlib.pyplot as plt
        import json                           # the time axis: benchmarks/bench_refine.py on 2 idle cores, not the evaluation's busy workers
        idle = json.loads(Path(BENCH).read_text())['apply_s']
        k_of = lambda m: 'pgd' if m == 'pgd' else m.split('refine=')[1].split(',')[0].rstrip(']')
        pts = [(idle['0'], dial[0]['base_mean'], 'K = 0 (the mask)')]
        pts += [(idle[k_of(r['method'])], r['mean'], LEVERS[r['method']].split('. ')[-1]) for r in dial if k_of(r['method']) in idle]
        fig, ax = plt.subplots(figsize=(6, 3.8))
        ax.plot([p[0] for p in pts], [p[1] for p in pts], 'o-')
        ax.set(xscale='log', xlabel='seconds per photo, detection included (2 idle CPU cores, bench_refine.py)',
               ylabel=f'{a.box}-box top-1 protection', ylim=(0, 1.1), title='the refine dial (development split)')
        ax.set_xlim(right=12); ax.grid(alpha=.3); fig.tight_layout()
        label_points(ax, [p[:2] for p in pts], [p[2] for p in pts])     # beside each point, none over another
        dpath = Path(a.out).with_name('refine_dial.png'); dpath.parent.mkdir(parents=True, exist_ok=True); fig.savefig(dpath, dpi=110)
        print(f'figure: {dpath}', file=sys.stderr)
    if a.out:
        methods = [r['method'] for r in rows if r['n'] >= a.min_people]
        fig, _ = plot_levers(recs, 'facecloak', methods, labels={**LEVERS, 'facecloak': 'zero start, no mixed batches (these records\' reference)'},
                             title=f'development split, {a.box}-box, {a.condition}', **kw)
        Path(a.out).parent.mkdir(parents=True, exist_ok=True); fig.savefig(a.out, dpi=110)
        print(f'figure: {a.out}', file=sys.stderr)


if __name__ == '__main__':
    main()
