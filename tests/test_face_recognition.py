"""face_recognition (ageitgey's library: dlib's HOG detector, 5-point alignment and ResNet) as an attacker only
(facecloak.dlib_attacker, nbs/02b_face_recognition.ipynb): it recognises real LFW people the way its README says, the
check says a clean photo is not protected, a missing piece fails with the extra's install line, and `facecloak eval`
can take it as a black-box target but never as a surrogate. CI installs the 'attack' extra (the 'dev' extra holds
it, README's install line brings face_recognition): nothing here is skipped."""
import sys

import numpy as np
import pytest
from PIL import Image

from facecloak import dlib_attacker as D
from facecloak.assets import lfw_people
from facecloak.testing import lfw_photo

PEOPLE = ('George_W_Bush', 'Tony_Blair', 'Gerhard_Schroeder')


@pytest.fixture(scope='module')
def att():
    return D.FaceRecognitionAttacker()


@pytest.fixture(scope='module')
def desc(att):
    "{person: [descriptor of photo 1, 2, 3]}, each the one face its detector finds."
    people = lfw_people()
    out = {}
    for p in PEOPLE:
        faces = [att.faces(f) for f in people[p][:3]]
        assert all(len(f) == 1 for f in faces), (p, [len(f) for f in faces])
        out[p] = [f[0].embedding for f in faces]
    return out


def test_same_person_within_the_tolerance_and_different_people_beyond(desc):
    same = [float(D.face_distance(e[i], e[j])[0]) for e in desc.values() for i in range(3) for j in range(i + 1, 3)]
    diff = [float(D.face_distance(desc[a][i], desc[b][j])[0]) for a in PEOPLE for b in PEOPLE if a < b for i in range(3) for j in range(3)]
    assert max(same) < D.THRESHOLD < min(diff), (sorted(same), sorted(diff))


def test_a_photo_without_a_face_is_no_face_found(att, desc):
    grey = Image.new('RGB', (250, 250), (128, 128, 128))
    assert att.faces(grey) == [] and att.distance(grey, desc['Tony_Blair'][0]) is None
    r = D.check_with_face_recognition(desc['Tony_Blair'][0], grey, attacker=att)
    assert (r.after, r.protected, r.outcome) == (None, True, 'no face found')


def test_check_says_a_clean_photo_is_not_protected(att, learnt_mask):
    "A real learnt mask keeps the aligned photo it was learnt from; a clean other photo of that person is recognised."
    assert learnt_mask.reference_image is not None
    learn, other = lfw_photo('Colin_Powell', 1), lfw_photo('Colin_Powell', 2)
    r = D.check_with_face_recognition(learnt_mask, other, original=other, attacker=att)
    assert r.after is not None and r.after <= D.THRESHOLD and not r.protected and r.outcome == 'RECOGNISED', r
    assert r.before == pytest.approx(r.after)
    before, after, threshold, protected = r                 # unpacks like a row of check_photo
    assert threshold == 0.6 and protected is False
    # the strongest attacker: no stored photo, the clean original itself is the reference
    r = D.check_with_face_recognition(None, other, original=other, attacker=att)
    assert r.before is None and r.after == pytest.approx(0, abs=1e-6) and not r.protected
    # another person's photo as the reference: protected
    assert D.check_with_face_recognition(lfw_photo('Tony_Blair', 1), learn, attacker=att).protected


def test_a_mask_without_its_photo_needs_the_clean_original(att):
    from facecloak.cloak import random_mask
    with pytest.raises(ValueError, match='--originals'): D.check_with_face_recognition(random_mask(), lfw_photo('Tony_Blair', 1), attacker=att)


@pytest.mark.parametrize('module, names', [('dlib', 'dlib-bin'), ('face_recognition_models', 'setuptools<81'),
                                           ('face_recognition', '--no-deps face_recognition==1.3.0')])
def test_missing_piece_fails_with_the_extra(monkeypatch, module, names):
    monkeypatch.setitem(sys.modules, module, None)          # `import module` raises ImportError, as when it is not installed
    for make in (D.load_face_recognition, D.FaceRecognitionAttacker):
        with pytest.raises(ImportError, match=r"facecloak\[attack\]") as e: make()
        assert names in str(e.value), str(e.value)
    assert not D.installed()
    from facecloak.evaluate import load_target
    with pytest.raises(ImportError, match=r"facecloak\[attack\]"): load_target(D.NAME)


def test_installed_here():
    "CI installs the extra: a missing library must fail here, not skip the tests above."
    assert D.installed()


def test_the_weights_read_are_the_registered_files(tmp_path, monkeypatch):
    import face_recognition_models as M
    from facecloak import assets
    for name, f in D.WHEEL_FILES.items():
        assert assets.sha256sum(f'{M.__path__[0]}/models/{f}') == assets.REGISTRY[name].sha256
    bad = tmp_path/'models'; bad.mkdir()                 # a package whose file is not the registered one fails its checksum
    for f in D.WHEEL_FILES.values(): (bad/f).write_bytes(b'not dlib')
    monkeypatch.setattr(M, '__file__', str(tmp_path/'__init__.py'))
    with pytest.raises(assets.ChecksumError): D.load_face_recognition()


def test_never_a_surrogate():
    from facecloak.models import load_model, resolve_surrogates
    for f in (lambda: load_model(D.NAME), lambda: resolve_surrogates([D.NAME]), lambda: resolve_surrogates(['mobilefacenet_ms1m', D.NAME])):
        with pytest.raises(ValueError, match='unknown model'): f()


def test_eval_target_black_box_and_left_out_of_every_surrogate_list(monkeypatch, tmp_path):
    "In 'loo' mode the folds learn with every other target but face_recognition; in 'fixed' mode it is never white-box."
    from facecloak import evaluate as ev
    subs = ev.subjects(2, split='dev', max_probes=2)
    models = {'mobilefacenet_ms1m': ev.load_target('mobilefacenet_ms1m', device='cpu'), D.NAME: ev.load_target(D.NAME)}
    g = ev.Gallery(models, subs, n_distractors=20, cache=False)
    seen = []
    none = ev.METHODS['none']
    monkeypatch.setitem(ev.METHODS, 'none', lambda s, eps, sur, dev, **kw: (seen.append(list(sur)), none(s, eps, sur, dev))[1])
    kw = dict(targets=list(models), gallery=g, models=models, lpips_net=None, workdir=tmp_path)
    loo = ev.evaluate_subject(subs[0], 'none', 8 / 255, surrogates=None, mode='loo', **kw)
    assert seen == [[], ['mobilefacenet_ms1m']], seen       # the fold of mobilefacenet_ms1m has no other model to learn with
    fixed = ev.evaluate_subject(subs[0], 'none', 8 / 255, surrogates=['mobilefacenet_ms1m', D.NAME], **kw)
    P = [r for r in loo + fixed if r['kind'] == 'protection' and r['target'] == D.NAME]
    assert len(P) == 2 and {r['box'] for r in P} == {'black'}
    for r in P:      # clean photos: found, named at top-1 and verified at the library's tolerance
        assert r['no_face'] == 0 and r['top1'] == 0 and r['ver_tol0.6'] == 0 and 0.4 <= r['sim'] <= 1, r
