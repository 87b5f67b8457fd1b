"""Guard the product's reason to exist: the default cloak still protects, and still looks as it did.

A seeded, CI-sized run of the evaluation protocol (`facecloak.evaluate.run_evaluation`: learn from one photo, protect
other photos of the person, save as JPEG q90, re-detect, search a gallery) on four development people, with the
plain mask (`facecloak`) and the default mode of `Mask.apply` (the mask refined on each photo, `facecloak[refine=20]`),
compared person by person with the record this same configuration wrote when the defaults were last chosen
(`data/eval/ci_guard.json.gz`; re-made, after a deliberate change of the defaults, with
`python tests/test_protection.py --record`). Every figure of the protocol is top-1 identification protection over
the black-box models (those never used to learn the mask) and the face SSIM.

The margins come from the record's own per-person spread (beside each assertion): a change that costs more
black-box protection than one standard error of the four people's recorded values (at least 0.03), or more face
SSIM than three, fails. The run is seeded, but the float order changes with the thread count and the machine, so a
borderline probe may move; the margins absorb such drift, and a halving of either mode (the record, made with the
defaults of issue #36, the purifier in the refine steps of issue #38 and the ε 12/255 plain mask of issue #37, whose
refine steps stay within 8/255, re-made when the mask's visibility term began to see FLIP beside SSIM (issue #37:
0.60 -> 0.47 for the plain mask, by design): 0.47 for the plain mask, 0.94 for the default mode, at 100 distractors)
is outside them.
"""
import gzip, json, math, pathlib, sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
RECORD = ROOT/'data'/'eval'/'ci_guard.json.gz'
CONFIG = dict(n_subjects=4, split='dev', max_probes=6, methods=('facecloak', 'facecloak[refine=20]'), epsilons=(12.,),
              sweep=('facecloak', 'facecloak[refine=20]'),    # at the default mask's budget (12/255; the refine dial's steps: 8/255)
              conditions=('clean',), n_distractors=100, lpips_net=None, seed=0)


def run(out):
    from facecloak.evaluate import EvalConfig, run_evaluation
    return run_evaluation(EvalConfig(**CONFIG), out, progress=False)


def quality(rec, method) -> dict:
    "{person: face SSIM} of `method`'s quality records."
    return {r['person']: r['ssim_face'] for r in rec['records'] if r['kind'] == 'quality' and r['method'] == method}


def margin(values, k: float, floor: float) -> float:
    "`k` standard errors of the per-person `values` (at least `floor`): how far the mean may fall before it is a regression."
    v = np.asarray(list(values), float)
    return max(k * float(v.std(ddof=1) / math.sqrt(len(v))), floor)


def compare(rec, ref) -> list:
    "The regressions of `rec` against the reference record `ref`, as messages (empty: none)."
    from facecloak.evaluate import per_person
    bad = []
    for m in CONFIG['methods']:
        a, b = per_person(ref, m, box='black'), per_person(rec, m, box='black')
        if sorted(a) != sorted(b): bad.append(f'{m}: people {sorted(b)} differ from the record {sorted(a)}'); continue
        ma, mb = np.mean(list(a.values())), np.mean(list(b.values()))
        tol = margin(a.values(), 1, 0.03)          # one standard error of the recorded people (0.07 for the mask), at least 0.03
        if mb < ma - tol: bad.append(f'{m}: black-box protection {mb:.3f} < recorded {ma:.3f} - {tol:.3f}')
        qa, qb = quality(ref, m), quality(rec, m)
        sa, sb = np.mean(list(qa.values())), np.mean(list(qb.values()))
        qtol = margin(qa.values(), 3, 0.005)       # three standard errors of the recorded face SSIM, at least 0.005
        if sb < sa - qtol: bad.append(f'{m}: face SSIM {sb:.4f} < recorded {sa:.4f} - {qtol:.4f}')
    return bad


def test_the_guard_catches_a_halving():
    "Made-up records: the same people with half the protection, or a visibly worse face, are caught; the record itself is not."
    ref = json.load(gzip.open(RECORD, 'rt'))
    assert compare(ref, ref) == []
    for method in CONFIG['methods']:                   # either method halved alone is caught
        half = json.loads(json.dumps(ref))
        for r in half['records']:
            if r['kind'] == 'protection' and r['method'] == method: r['top1'] = r['top1'] / 2
        assert [m for m in compare(half, ref) if 'black-box protection' in m and m.startswith(method + ':')], method
    blotchy = json.loads(json.dumps(ref))
    for r in blotchy['records']:
        if r['kind'] == 'quality': r['ssim_face'] -= 0.02
    assert any('face SSIM' in m for m in compare(blotchy, ref))


def test_default_protection_holds(tmp_path):
    "The default mask and the refine dial, learnt and attacked for real (about 4 minutes on 2 cores from an empty cache)."
    ref = json.load(gzip.open(RECORD, 'rt'))
    assert ref['config']['methods'] == list(CONFIG['methods']) and ref['config']['n_distractors'] == CONFIG['n_distractors']
    rec = run(tmp_path/'guard.json.gz')
    from facecloak.evaluate import per_person
    print({m: (per_person(rec, m, box='black'), quality(rec, m)) for m in CONFIG['methods']})
    assert compare(rec, ref) == []


if __name__ == '__main__' and '--record' in sys.argv:
    RECORD.unlink(missing_ok=True)
    rec = run(RECORD)
    from facecloak.evaluate import per_person
    for m in CONFIG['methods']: print(m, per_person(rec, m, box='black'), quality(rec, m))
