"""The evaluation pipeline end to end on a tiny subset, so it cannot rot: the same code as the
20-person run (`facecloak eval`, which benchmarks/bench_evaluate.py wraps), 2 subjects x 2 probes,
2 target models. It needs LFW (FACECLOAK_DATA_DIR: CI always has it) and a few minutes from a cold cache.
Below it, the protocol's leak-freedom checked on the real defaults: the splits, the pools a learner draws other
people from, the gallery's distractors, and what every method's learner is given and reads."""
import importlib.util, json, os, subprocess, sys
from pathlib import Path

import pytest

from facecloak.evaluate import EvalConfig, load_record, run_evaluation, summarize

ROOT = Path(__file__).resolve().parent.parent


def _bench():
    spec = importlib.util.spec_from_file_location('bench_evaluate', ROOT/'benchmarks'/'bench_evaluate.py')
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod


def test_tiny_evaluation_runs_resumes_and_refuses_mixing(tmp_path, capsys):
    out = tmp_path/'eval.json.gz'
    assert _bench().main(['--tiny', '--out', str(out), '--figures', str(tmp_path/'fig')]) == 0
    printed = json.loads(capsys.readouterr().out)
    rec = load_record(out)
    P = [r for r in rec['records'] if r['kind'] == 'protection']
    assert {r['method'] for r in P} == {'none', 'noise'} and {r['condition'] for r in P} == {'clean', 'jpeg50'}
    assert {r['box'] for r in P} == {'white', 'black'}
    # clean photos are recognised: protection of unprotected photos is ~0 (the protocol does not flatter)
    assert all(r['top1'] <= 0.5 for r in P if r['method'] == 'none')
    assert any(r['top1'] == 0 for r in P if r['method'] == 'none')
    assert all('ver_far1e-3' in r for r in P)
    assert printed['summary']['clean'] == summarize(rec, 'clean')
    assert (out.with_suffix('.md')).exists() and len(list((tmp_path/'fig').glob('*.png'))) == 3
    # resumable: a second run finds every unit done and adds nothing
    n = len(rec['records'])
    assert _bench().main(['--tiny', '--out', str(out)]) == 0
    assert len(load_record(out)['records']) == n and json.loads(capsys.readouterr().out)['summary'] == printed['summary']
    # another config never mixes into the same record
    with pytest.raises(ValueError, match='another config'):
        run_evaluation(EvalConfig(n_subjects=3), out, progress=False)



def test_baselines_keep_their_zero_start_and_own_batches(monkeypatch):
    """universal1, OPOM-style and per-photo PGD stay what they were (a zero start, no other people, no visibility term,
    leakage weight 0.5: the 'baseline' preset of facecloak.cloak) when learn_mask's defaults move."""
    from types import SimpleNamespace
    from facecloak import cloak, evaluate as ev
    seen = []
    monkeypatch.setattr(cloak, 'learn_mask', lambda *a, **kw: seen.append(kw) or cloak.random_mask(epsilon=8 / 255, seed=0))
    monkeypatch.setattr(ev, '_LEARNT', {})
    s = SimpleNamespace(name='p', learn='a.jpg', extra=['b.jpg'])
    ev.METHODS['universal1'](s, 8 / 255, None, 'cpu'); ev.METHODS['opom'](s, 8 / 255, None, 'cpu')
    pgd = ev.METHODS['pgd'](s, 8 / 255, None, 'cpu')
    base = ('zero', 0, 0.0, 0.5)
    assert cloak.preset('baseline') == dict(zip(('init', 'mix', 'visibility', 'leakage_weight'), base))
    assert [(k['init'], k['mix'], k['visibility'], k['leakage_weight']) for k in seen] == [base, base]
    assert (pgd.kw['init'], pgd.kw['mix'], pgd.kw['visibility'], pgd.kw['leakage_weight']) == base
    ev.METHODS['facecloak'](s, 8 / 255, None, 'cpu')            # the method under study takes learn_mask's defaults
    assert not {'init', 'mix', 'visibility', 'leakage_weight'} & set(seen[-1])
    ev.METHODS['facecloak_uniform'](s, 8 / 255, None, 'cpu')    # ... but for the uniform budget, spelled out
    assert seen[-1]['leakage_weight'] == 0.0 and not {'init', 'mix', 'visibility'} & set(seen[-1])
    ev.METHODS['universal1'](s, 8 / 255, None, 'cpu', mix=2)   # and a spec's own option still wins
    assert seen[-1]['mix'] == 2


def test_dask_workers_reuse_the_heap(capsys):
    """benchmarks/bench_dask_malloc.py: in a plain Dask worker every tensor is a fresh zero-filled mapping (page faults
    by the million); in `local_cluster`'s workers the heap is reused, as in the parent (no timing asserted)."""
    spec = importlib.util.spec_from_file_location('bench_dask_malloc', ROOT/'benchmarks'/'bench_dask_malloc.py')
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    mod.main(['--steps', '2', '--batch', '4'])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {'in_process', 'dask_default', 'local_cluster'} <= set(out)
    assert out['dask_default']['minor_faults'] > 3 * out['local_cluster']['minor_faults'], out


def test_dask_evaluation_uses_local_cluster(monkeypatch, tmp_path):
    "`scheduler='local'` starts its workers through `core.local_cluster` (the heap fix above), never a plain LocalCluster."
    from facecloak import evaluate as ev
    from facecloak.cli import TINY
    class Started(Exception): pass
    made = []
    def spy(*a, **kw): made.append(a); raise Started
    monkeypatch.setattr(ev, 'local_cluster', spy)
    with pytest.raises(Started):
        run_evaluation(EvalConfig(**TINY), tmp_path/'r.json', scheduler='local', n_workers=2, memory_limit='1GB', progress=False)
    assert made == [(2, '1GB')]


def test_portraits_are_recorded_photo_by_photo(tmp_path):
    "`--portraits N`: each method's face SSIM at full size on N large portraits, the mean and each portrait's in order (so a subset can be compared)."
    import numpy as np
    from facecloak.cli import TINY
    from facecloak.evaluate import portrait_photos, portrait_quality
    from facecloak.cloak import random_mask
    cfg = EvalConfig(**dict(TINY, n_subjects=1, methods=('noise',), conditions=('clean',), portraits=3))
    rec = run_evaluation(cfg, tmp_path/'p.json.gz', progress=False)
    (q,) = [r for r in rec['records'] if r['kind'] == 'quality']
    each = q['portrait_ssim_face_each']
    assert q['portrait_n'] == len(each) == 3 and 0.5 < min(each) and max(each) < 1
    assert abs(np.mean(each) - q['portrait_ssim_face']) < 1e-4
    # the order is portrait_photos' order: the first one alone reads as the record's first entry
    one = portrait_quality(random_mask(epsilon=8 / 255, seed=0), portrait_photos(1))     # the 'noise' method's mask
    assert one['n'] == 1 and abs(one['ssim_face'] - each[0]) < 1e-4


def test_the_attackers_own_detectors_and_growing_gallery_are_conditions(tmp_path, monkeypatch):
    """Issue #38: `clean,detectors,growing` on the CI-sized run (2 people x 2 probes, 'none'): one record per condition
    and target, each naming its detector, crop and gallery; the unprotected probes are found by every detector and
    named (the box crop, a weaker attacker, may miss some); the growing gallery keeps each probe it names; a condition
    whose detector finds no face counts its probes as protected and says so in `no_face`; the worst case leaves the
    growing gallery out unless asked; `by_condition` has a row per condition and the worst case."""
    from PIL import Image
    from facecloak import attacker
    from facecloak.cli import TINY
    from facecloak.report import by_condition, worst_case
    grey = attacker.Condition(lambda im: Image.new('RGB', im.size, 'grey'), detector='yunet')     # nothing to find
    monkeypatch.setitem(attacker.CONDITIONS, 'grey_yunet', grey)
    conds = attacker.expand_conditions('clean,detectors,growing') + ('grey_yunet',)
    rec = run_evaluation(EvalConfig(**dict(TINY, methods=('none',), conditions=conds)), tmp_path/'d.json', progress=False)
    P = [r for r in rec['records'] if r['kind'] == 'protection']
    assert [r['condition'] for r in P if r['person'] == P[0]['person'] and r['target'] == 'edgeface_xs'] == list(conds)
    by = {(r['person'], r['target'], r['condition']): r for r in P}
    assert len(by) == len(P) == 2 * 2 * len(conds)
    want = dict(clean=('mtcnn', 'landmarks', 'fixed'), det_retinaface=('retinaface', 'landmarks', 'fixed'),
                det_scrfd=('scrfd', 'landmarks', 'fixed'), det_yunet=('yunet', 'landmarks', 'fixed'),
                det_box=('mtcnn', 'box', 'fixed'), growing=('mtcnn', 'landmarks', 'growing'), grey_yunet=('yunet', 'landmarks', 'fixed'))
    for r in P:
        assert (r['detector'], r['alignment'], r['gallery']) == want[r['condition']]
        if r['condition'] == 'grey_yunet': assert (r['no_face'], r['top1'], r['protected']) == (1., 1., [1, 1])
        else: assert r['no_face'] == 0 and len(r['protected']) == 2
        if r['condition'] in ('clean', 'det_retinaface', 'det_scrfd', 'det_yunet'): assert r['top1'] <= .5, r
        if r['condition'] == 'growing':
            clean = by[r['person'], r['target'], 'clean']
            assert r['grown'] == 2 - sum(r['protected']) and r['protected'][0] == clean['protected'][0] and r['top1'] <= clean['top1']
    assert by[P[0]['person'], 'edgeface_xs', 'det_yunet']['sims'] != by[P[0]['person'], 'edgeface_xs', 'clean']['sims']
    # the worst case: every condition but the growing gallery, unless it is named
    for r in P:
        if r['condition'] == 'growing': r['top1'] = -1.                              # would show if it were counted
    w = worst_case(rec, 'none')
    assert w == worst_case(rec, 'none', conditions=[c for c in conds if c != 'growing']) and min(w.values()) >= 0
    assert set(worst_case(rec, 'none', conditions=conds).values()) == {-1.}
    rows = by_condition(rec)
    assert [r['condition'] for r in rows] == list(conds) + ['worst'] and rows[-1]['top1'] == sum(w.values()) / len(w)   # not growing's -1
    assert next(r for r in rows if r['condition'] == 'grey_yunet')['no_face'] == 1.


def test_face_recognition_keeps_its_own_detector_under_the_attackers_conditions(tmp_path):
    """face_recognition (dlib) finds and crops faces itself: a condition with another detector or crop has no record for
    it, the growing gallery (same photos, another search) has; our models get a record for every condition."""
    from facecloak import evaluate as ev
    from facecloak.dlib_attacker import NAME
    subs = ev.subjects(2, split='dev', max_probes=2)
    models = {'mobilefacenet_ms1m': ev.load_target('mobilefacenet_ms1m', device='cpu'), NAME: ev.load_target(NAME)}
    g = ev.Gallery(models, subs, n_distractors=20, cache=False)
    recs = ev.evaluate_subject(subs[0], 'none', 8 / 255, targets=list(models), surrogates=None, gallery=g, models=models,
                               conditions=('clean', 'det_yunet', 'det_box', 'growing'), lpips_net=None, workdir=tmp_path)
    got = [(r['target'], r['condition'], r.get('detector')) for r in recs if r['kind'] == 'protection']
    assert got == [('mobilefacenet_ms1m', 'clean', 'mtcnn'), (NAME, 'clean', None), ('mobilefacenet_ms1m', 'det_yunet', 'yunet'),
                   ('mobilefacenet_ms1m', 'det_box', 'mtcnn'), ('mobilefacenet_ms1m', 'growing', 'mtcnn'), (NAME, 'growing', None)]
    fr = [r for r in recs if r.get('target') == NAME]
    assert fr[1]['gallery'] == 'growing' and fr[1]['top1'] == 0 and fr[1]['grown'] == 2      # clean photos: named, kept


# ---------------------------------------------------------------------------------------------
# Leak-freedom of the real defaults: checked against the people LFW's folders hold, not against a list
# filtered beforehand. The evaluated people are both splits (dev and test).
# ---------------------------------------------------------------------------------------------

def _evaluated() -> set:
    from facecloak.evaluate import split_people
    return set(split_people('dev')) | set(split_people('test'))


def _people(paths) -> set:
    "Whose photos `paths` are (LFW keeps each person's photos in a folder of their name)."
    return {Path(p).parent.name for p in paths}


def test_the_splits_are_every_person_with_twelve_photos_once():
    "dev and test together are every LFW person with 12 or more photos (counted from the folders), each in one split."
    from facecloak.assets import lfw_people
    from facecloak.evaluate import DEV_PEOPLE, SPLIT_MIN_PHOTOS, split_people
    dev, test = split_people('dev'), split_people('test')
    assert sorted(dev + test) == sorted(k for k, v in lfw_people().items() if len(v) >= SPLIT_MIN_PHOTOS)
    assert sorted(dev) == sorted(DEV_PEOPLE) and len(test) >= 40


def test_the_anchor_bank_mix_and_transfer_pools_never_hold_an_evaluated_person(monkeypatch):
    """The people a cloak may learn from besides the user: the anchor pool (`pool_people('lfw')`, all of it, and the bank
    `learn_mask` builds by default), the other people `mix` adds to each batch and the prior learnt from
    (`prior_photos`), and the transfer bank of the offline synthetic set (`synth.build_bank`'s defaults). Each is
    caught where the real code reads it and checked against both splits."""
    from facecloak import cloak, cloak_learn, cloak_targets, synth
    from facecloak.testing import TinyFace, face_like, standins
    evaluated = _evaluated()
    whole = cloak.pool_people('lfw', n_people=None, per_person=1000)
    assert len(whole) > 2000 and not set(whole) & evaluated and not _people(p for v in whole.values() for p in v) & evaluated
    for photos in (cloak.prior_photos(), cloak.prior_photos(cloak.CloakConfig().mix_pool)):
        assert not _people(photos) & evaluated

    class Stop(Exception): pass
    seen = {}
    def catch(name, real):
        def spy(*a, **kw): seen[name] = real(*a, **kw); raise Stop
        return spy
    # learn_mask's default bank: the pool build_anchor_bank draws, caught before anything is embedded
    pool = cloak_targets.pool_people
    monkeypatch.setattr(cloak_targets, 'pool_people', catch('bank', pool))
    with pytest.raises(Stop): cloak.learn_mask(face_like(7), surrogates=[TinyFace(0)], device='cpu', progress=False)
    monkeypatch.setattr(cloak_targets, 'pool_people', pool)
    assert len(seen['bank']) == 300 and not set(seen['bank']) & evaluated
    assert not _people(p for v in seen['bank'].values() for p in v) & evaluated
    # mix: the other people's photos, caught as other_people asks for them (its cache emptied first)
    monkeypatch.setattr(cloak_learn, '_OTHERS', {})
    monkeypatch.setattr(cloak_learn, 'prior_photos', catch('mix', cloak_learn.prior_photos))
    with pytest.raises(Stop): cloak.learn_mask(face_like(7), surrogates=[TinyFace(0)], bank=standins().bank, device='cpu', progress=False)
    assert len(seen['mix']) == cloak.CloakConfig().mix_pool and not _people(seen['mix']) & evaluated
    # the transfer bank: every photo build_bank's defaults would harvest (refused here, so nothing is harvested)
    read = []
    def prepare(p, **kw): read.append(p); raise ValueError('not harvested in this test')
    monkeypatch.setattr(synth, 'prepare', prepare)
    with pytest.raises(ValueError, match='no usable photo pairs'): synth.build_bank(progress=False)
    assert len(_people(read)) == 80 and not _people(read) & evaluated


def test_the_gallery_never_holds_a_subject_as_a_distractor():
    """The real gallery of each split (every subject, every distractor; and a run's default size): the subjects come
    first with their own gallery photo, and no distractor label or photo is an evaluated person or an anchor."""
    from facecloak import cloak
    from facecloak.evaluate import EvalConfig, Gallery, subjects
    evaluated, anchors = _evaluated(), set(cloak.pool_people('lfw', n_people=None))
    cfg = EvalConfig(split='dev')
    for subs, n in [(subjects(None, split='dev'), None), (subjects(None, split='test'), None),
                    (subjects(cfg.n_subjects, split='dev', seed=cfg.seed, max_probes=cfg.max_probes), cfg.n_distractors)]:
        g = Gallery({}, subs, n_distractors=n, seed=cfg.seed)         # no model: the labels and photos, nothing embedded
        k = len(subs)
        assert g.labels[:k] == [s.name for s in subs] and g.paths[:k] == [s.gallery for s in subs]
        assert [Path(p).parent.name for p in g.paths[:k]] == g.labels[:k]
        dis, photos = g.labels[k:], g.paths[k:]
        assert len(dis) == len(set(dis)) >= (n or 2000)
        assert not set(dis) & evaluated and not _people(photos) & evaluated and not set(dis) & anchors


def test_every_method_learns_only_from_the_photos_the_protocol_gives_it(monkeypatch, tmp_path):
    """Every method of `METHODS`, run through `evaluate_subject` as a real run does: what reaches a learner (its
    arguments, and every photo file it opens while learning) of the subject's photos is the learning photo alone;
    'opom' the learning photo and the four extra photos (the OPOM-style upper bound allowed several real photos);
    'pgd' the one probe it protects (per-photo PGD learns on the photo itself), never another probe; no learner ever
    sees the gallery photo, and the other people it reads (mix) are never evaluated people. The learner is the real
    one on stand-in surrogates and bank with one step, so this takes seconds."""
    from facecloak import align, cloak, cloak_learn, evaluate as ev, synth
    from facecloak.models import load_model
    from facecloak.testing import standins
    s = ev.subjects(1, max_probes=2, split='dev', seed=0)[0]
    own, st, calls, now = {s.learn, s.gallery, *s.extra, *s.probes}, standins(), [], []
    real_learn, real_open = cloak.learn_mask, align.open_image
    def learner(photo=None, **kw):
        calls.append(dict(method=method, photo=photo, images=kw.get('images'), read=[])); now.append(calls[-1])
        try: return real_learn(photo, **{**kw, 'bank': st.bank, 'steps': 1, 'n_images': 2})
        finally: now.pop()
    def opened(src, *a, **kw):                  # every photo file read goes through align.open_image
        if now and isinstance(src, (str, os.PathLike)): now[-1]['read'].append(Path(src))
        return real_open(src, *a, **kw)
    monkeypatch.setattr(cloak, 'learn_mask', learner)
    monkeypatch.setattr(align, 'open_image', opened)
    monkeypatch.setattr(ev, '_LEARNT', {})
    monkeypatch.setattr(cloak_learn, '_OTHERS', {})                   # so that mix reads its other people here
    monkeypatch.setitem(synth._BANK, 'auto', None)                    # the offline set without its transfer bank (its people: above)
    models = {'mobilefacenet_ms1m': load_model('mobilefacenet_ms1m', device='cpu')}
    gallery = ev.Gallery(models, [s], n_distractors=5, cache=False)
    for method in ev.METHODS:
        recs = ev.evaluate_subject(s, method, 8 / 255, targets=list(models), surrogates=st.tiny, gallery=gallery, models=models,
                                   device='cpu', lpips_net=None, workdir=tmp_path)
        assert {r['kind'] for r in recs} == {'quality', 'protection'}, method
    by = {m: [c for c in calls if c['method'] == m] for m in ev.METHODS}
    assert not by['none'] + by['noise'] + by['prior']                 # nothing learns
    for m in ('universal1', 'facecloak', 'facecloak_offline', 'facecloak_uniform'):
        (c,) = by[m]
        assert (c['photo'], c['images']) == (s.learn, None), m
        assert {p for p in c['read'] if p in own} == {s.learn}, (m, c['read'])
    (c,) = by['opom']
    assert (c['photo'], c['images']) == (s.learn, [s.learn, *s.extra]) and len(s.extra) == 4
    assert {p for p in c['read'] if p in own} == {s.learn, *s.extra}
    assert [c['photo'] for c in by['pgd']] == s.probes and len(s.probes) == 2
    for c in by['pgd']: assert c['images'] == 'photo' and {p for p in c['read'] if p in own} == {c['photo']}, c['read']
    assert not any(s.gallery in c['read'] for c in calls)
    others = [p for c in calls for p in c['read'] if p not in own]
    assert len(_people(others)) >= 100 and not _people(others) & _evaluated()     # facecloak's mix: 200 other people
