"""The attacker who adapts (issue #38), in `facecloak.attacker` (nbs/06a_attacker.ipynb): conditions that carry the
attacker's own detector and crop, a plain box crop, and a gallery that grows with every probe it names. Small: the
growing gallery on made-up embeddings, the pipeline on a few LFW photos and the stand-in-free MobileFaceNet."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from facecloak import attacker as A
from facecloak.assets import AssetNotFoundError
from facecloak.testing import lfw_photo


def test_unknown_condition_is_refused_with_the_known_ones():
    for bad in (lambda: A.expand_conditions('clean,fog'), lambda: A.condition('fog'), lambda: A.check_conditions(['detectors', 'fog'])):
        with pytest.raises(ValueError) as e: bad()
        msg = str(e.value)
        assert 'unknown fog' in msg and all(c in msg for c in ('clean', 'det_yunet', 'det_box', 'growing')) and 'detectors' in msg


def test_detector_conditions_and_their_group():
    conds = A.expand_conditions('detectors')
    assert conds == ('clean', 'det_retinaface', 'det_scrfd', 'det_yunet', 'det_box')
    got = [(A.condition(c).detector, A.condition(c).alignment, A.condition(c).gallery) for c in conds]
    assert got == [('mtcnn', 'landmarks', 'fixed'), ('retinaface', 'landmarks', 'fixed'), ('scrfd', 'landmarks', 'fixed'),
                   ('yunet', 'landmarks', 'fixed'), ('mtcnn', 'box', 'fixed')]
    assert not any(A.condition(c).changes_photo for c in conds + ('growing',))
    assert A.condition('growing').gallery == 'growing' and not A.condition('growing').own_pipeline
    # a plain function is still a condition: its transform, with the default attacker
    j = A.condition('jpeg50')
    assert (j.transform, j.detector, j.alignment, j.gallery, j.changes_photo) == (A.CONDITIONS['jpeg50'], 'mtcnn', 'landmarks', 'fixed', True)
    assert set(A.expand_conditions('all')) == set(A.CONDITIONS)


def test_a_condition_with_missing_detector_weights_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv('FACECLOAK_MODEL_DIR', str(tmp_path)); monkeypatch.setenv('FACECLOAK_CACHE_DIR', str(tmp_path))
    with pytest.raises(AssetNotFoundError) as e: A.check_conditions('clean,det_yunet')
    assert "'det_yunet'" in str(e.value) and 'yunet.onnx not found' in str(e.value) and 'FACECLOAK_MODEL_DIR' in str(e.value)
    assert isinstance(e.value, FileNotFoundError)
    assert A.check_conditions('cleanup,det_box,growing')[-2:] == ('det_box', 'growing')      # MTCNN needs no file


def test_the_cli_refuses_a_condition_whose_detector_weights_are_missing(tmp_path, monkeypatch, capsys):
    from facecloak.cli import EXIT_USAGE, main
    monkeypatch.setenv('FACECLOAK_MODEL_DIR', str(tmp_path)); monkeypatch.setenv('FACECLOAK_CACHE_DIR', str(tmp_path))
    assert main(['eval', '--conditions', 'clean,det_scrfd', '--out', str(tmp_path/'r.json')]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert '--conditions' in err and 'scrfd_2.5g_bnkps.onnx' in err and not (tmp_path/'r.json').exists()


def _gallery():
    "Identities a, b, c on three axes; the fourth axis is what a's posted photos share."
    return A.Gallery.from_embeddings(['a', 'b', 'c'], {'m': torch.eye(4)[:3]})


def test_growing_gallery_one_identified_probe_makes_a_later_one_identified():
    g = _gallery()
    p = F.normalize(torch.tensor([[1., 0, 0, .5],          # plainly a: named
                                  [.3, .6, 0, .9],          # nearer b's gallery photo than a's, nearer still to the first probe
                                  [0, .2, .9, .4]]), dim=1)  # c's look: named c either way
    found, thr = [True] * 3, {'far1e-3': .55}
    fixed, grow = A.protection(g, 'm', p, found, 'a', thr), A.growing_protection(g, 'm', p, found, 'a', thr)
    assert fixed['protected'] == [0, 1, 1] and fixed['top1'] == pytest.approx(2 / 3)
    assert grow['protected'] == [0, 0, 1] and grow['top1'] == pytest.approx(1 / 3) and grow['grown'] == 2
    assert grow['top1'] < fixed['top1'] and grow['ver_far1e-3'] < fixed['ver_far1e-3']
    assert grow['sims'][1] > fixed['sims'][1] and grow['sims'][0] == fixed['sims'][0]
    # the stream's order matters: posted first, the hard probe is missed and the easy one no longer helps it
    assert A.growing_protection(g, 'm', p[[1, 0, 2]], found, 'a', thr)['protected'] == [1, 0, 1]
    # with nothing named, the growing gallery is the fixed one
    none = F.normalize(torch.tensor([[0, 1., 0, .1], [0, 0, 1., .1]]), dim=1)
    a, b = A.protection(g, 'm', none, [True, True], 'a', thr), A.growing_protection(g, 'm', none, [True, True], 'a', thr)
    assert b.pop('grown') == 0 and a == b


def test_growing_gallery_keeps_probes_without_a_face_protected_and_uses_the_models_own_score():
    g = _gallery()
    p = F.normalize(torch.tensor([[1., 0, 0, .5], [.3, .6, 0, .9]]), dim=1)
    r = A.growing_protection(g, 'm', p, [False, True], 'a', {})
    assert r['protected'] == [1, 1] and r['no_face'] == .5 and r['grown'] == 0 and len(r['sims']) == 1
    # a model with its own similarity (face_recognition's, from a distance): the growing gallery scores with it too
    dist = lambda e, ref: 1 - torch.cdist(e, ref)
    gd = A.Gallery.from_embeddings(['a', 'b', 'c'], {'m': torch.eye(4)[:3]}, score={'m': dist})
    assert torch.allclose(gd.scores('m', p), dist(p, torch.eye(4)[:3]))
    assert A.growing_protection(gd, 'm', p, [True, True], 'a', {})['protected'] == [0, 0]


def test_box_alignment_crops_the_detectors_box_without_landmarks():
    from facecloak import align
    photos = [lfw_photo('Colin_Powell', i) for i in (1, 2)]
    xl, okl = A.attacker_align(photos, cache=False)
    xb, okb = A.attacker_align(photos, cache=False, alignment='box')
    assert okl.tolist() == okb.tolist() == [True, True] and xb.shape == xl.shape == (2, 3, 112, 112)
    assert (xb - xl).abs().mean() > 0.02                                  # another crop
    f = align.detect(photos[0])[0]
    im = align.load_photo(photos[0])
    ref = align.warp_face(im, align.box_transform(f.box), (112, 112), device='cpu')
    assert torch.allclose(xb[:1].cpu(), ref, atol=1e-5)                  # exactly the box crop, square around the box's centre
    with pytest.raises(ValueError, match="unknown alignment 'eyes'; known: landmarks, box"):
        A.attacker_align(photos, alignment='eyes')
