"""The evaluation pipeline end to end on a tiny subset, so it cannot rot: the same code as the
20-person run (benchmarks/bench_evaluate.py), 2 subjects x 2 probes, 2 target models."""
import importlib.util, json, subprocess, sys
from pathlib import Path

import pytest

from facecloak import assets
from facecloak.evaluate import EvalConfig, load_record, run_evaluation, summarize

pytestmark = pytest.mark.skipif(not assets.available('lfw'), reason='LFW not found: set FACECLOAK_DATA_DIR')
ROOT = Path(__file__).resolve().parent.parent


def _bench():
    spec = importlib.util.spec_from_file_location('bench_evaluate', ROOT/'benchmarks'/'bench_evaluate.py')
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod


def test_tiny_evaluation_runs_resumes_and_refuses_mixing(tmp_path, capsys):
    out = tmp_path/'eval.json.gz'
    _bench().main(['--tiny', '--out', str(out), '--figures', str(tmp_path/'fig')])
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
    _bench().main(['--tiny', '--out', str(out)])
    assert len(load_record(out)['records']) == n
    # another config never mixes into the same record
    with pytest.raises(ValueError, match='another config'):
        run_evaluation(EvalConfig(n_subjects=3), out, progress=False)


def test_bench_stage1_cli():
    "The stage-1 benchmark parses its arguments and documents its set specs (its runs need LFW and minutes)."
    r = subprocess.run([sys.executable, str(ROOT/'benchmarks'/'bench_stage1.py'), '--help'], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert 'protect' in r.stdout and 'drift' in r.stdout and 'reference' in r.stdout
    r = subprocess.run([sys.executable, str(ROOT/'benchmarks'/'bench_stage1.py'), 'nonsense'], capture_output=True, text=True)
    assert r.returncode == 2 and 'invalid choice' in r.stderr


def _stage1():
    spec = importlib.util.spec_from_file_location('bench_stage1', ROOT/'benchmarks'/'bench_stage1.py')
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod


def test_bench_stage1_oracle_transfer_moves_the_photo_onto_the_other_photo():
    "The oracle (`ogN`/`oaN`) really carries the person's other photo's landmarks onto the photo, and nothing else."
    import numpy as np, torch
    from facecloak import synth as S
    from facecloak.evaluate import subjects
    B, s = _stage1(), subjects(1, max_probes=2, seed=0)[0]
    fc = S.prepare(s.learn, device='cpu')
    other = next(c for c in (S.prepare(p, device='cpu') for p in s.extra) if c.landmarks == 'pfld')
    # nothing moved: the photo comes back
    same = B.own_transfer(fc, [other], geometry=False, light=False)
    assert same.shape == (1, 3, 112, 112) and torch.allclose(same, S.finish(fc), atol=1e-5)
    # geometry: the landmarks end where the other photo's are (similarity-aligned onto the photo)
    bank = S.TransferBank(*(torch.stack([v[0]]) for v in (lambda p: (p['src'], p['dst'], p['ratio'], p['gain']))(
        S.bank_pairs([fc, other], max_median=1., max_point=10.))))
    moved, _ = S.transfer(fc, bank, 1., index=0, light=False, max_disp=1.)
    target = S.apply_affine(S.similarity(S.five_points(other.lm), S.five_points(fc.lm)), other.lm)
    assert np.abs(moved.lm - target).max() < 1e-3 and np.abs(fc.lm - target).mean() > 0.5
    geo = B.own_transfer(fc, [other], light=False)
    assert torch.allclose(geo, S.finish(moved), atol=1e-5) and (geo - S.finish(fc)).abs().mean() > 1e-3


def test_bench_stage1_offset_takes_new_people_and_refuses_too_few():
    "`--offset` moves on to people not measured yet; asking past the end is refused, never silently shortened."
    B = _stage1()
    first, nxt = B.people(6, 1)[1], B.people(6, 1, 6)[1]
    assert len(nxt) == 6 and not {s.name for s in first} & {s.name for s in nxt}
    gallery, dev = B.people(8, 0, 12)
    assert len(gallery) == 20 and len(dev) == 8
    with pytest.raises(SystemExit, match='only 8 people'): B.people(12, 0, 12)
    with pytest.raises(SystemExit, match='only'): B.people(12, 1, 1000)
