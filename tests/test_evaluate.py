"""The evaluation pipeline end to end on a tiny subset, so it cannot rot: the same code as the
20-person run (`facecloak eval`, which benchmarks/bench_evaluate.py wraps), 2 subjects x 2 probes,
2 target models. It needs LFW (FACECLOAK_DATA_DIR: CI always has it) and a few minutes from a cold cache."""
import importlib.util, json, subprocess, sys
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
