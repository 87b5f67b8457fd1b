"""Fixtures more than one test file uses, built once per session.

The helpers they are made of are public in `facecloak.testing` (nbs/00_testing.ipynb): the stand-in face model
(`TinyFace`, `face_like`, `standins`), the LFW photo picker (`lfw_photo`), the decompression-bomb PNG (`bomb_png`)
and the similarity matrix (`similarity_matrix`). Test files import those; they never import each other.
"""
import pytest

from facecloak.testing import lfw_photo

EPS = 8 / 255          # the budget of the shared masks (8 grey levels)


@pytest.fixture(scope='session')
def sign_mask():
    "A random ±ε mask (ε = 8/255, seed 0): every pixel of the face moves by the whole budget; no learning."
    from facecloak.cloak import random_mask
    return random_mask(epsilon=EPS, seed=0, kind='sign')


@pytest.fixture(scope='session')
def sign_mask_file(sign_mask, tmp_path_factory):
    "`sign_mask` saved as a mask file."
    return sign_mask.save(tmp_path_factory.mktemp('sign_mask')/'me.mask')


@pytest.fixture(scope='session')
def learnt_mask():
    "A real (if short) learnt mask: one real surrogate, an anchor photo and no bank, three steps, so it takes seconds."
    from facecloak.cloak import learn_mask
    return learn_mask(lfw_photo('Colin_Powell', 1), anchor=lfw_photo('George_W_Bush', 1), surrogates=['mobilefacenet_ms1m'],
                      w_similar=0, steps=3, device='cpu', progress=False)


@pytest.fixture(scope='session')
def learnt_mask_file(learnt_mask, tmp_path_factory):
    "`learnt_mask` saved as a mask file."
    return learnt_mask.save(tmp_path_factory.mktemp('learnt_mask')/'me.mask')
