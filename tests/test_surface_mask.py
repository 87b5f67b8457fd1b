"Tests of the surface-anchored mask (`parameterisation='uv'`): bound, file format, apply paths, and that it follows the face."
import math

import numpy as np, pytest, torch
from hypothesis import given, settings, strategies as st
from PIL import Image
from safetensors import safe_open

from facecloak import align, assets, face3d
from facecloak.cloak import CloakConfig, Mask, augment_set, build_anchor_bank, learn_mask, surface_maps
from facecloak.core import gaussian_blur
from facecloak.testing import similarity_matrix as sim_M, standins

EPS = 8 / 255


@pytest.fixture(scope='module')
def person():
    ppl = assets.lfw_people(min_photos=10)
    return ppl[sorted(ppl)[1]]


@pytest.fixture(scope='module')
def learnt(person):
    st = standins(n_bank=10)                       # two TinyFaces and a bank of 10 random identities
    tiny, bank = st.tiny, st.bank
    me = augment_set(align.align(person[0], size=(112, 112)).image.cpu(), 5, seed=0)
    kw = dict(surrogates=tiny, bank=bank, steps=8, device='cpu', progress=False, epsilon=EPS)      # the budget these tests check
    return me, kw, learn_mask(images=me, parameterisation='uv', **kw)


def _smooth_texture(seed, eps=EPS, sigma=4.0):
    g = torch.Generator().manual_seed(seed)
    t = gaussian_blur(torch.randn(1, 3, 112, 112, generator=g), sigma)
    return (t / t.abs().max() * eps).float()


def test_learnt_surface_mask_keeps_the_bound_and_round_trips(learnt, person, tmp_path):
    me, kw, m = learnt
    assert m.surface is not None and tuple(m.surface.shape) == (1, 3, 112, 112)
    assert m.surface.abs().max() <= EPS + 1e-7 and m.surface.abs().max() > 0.5 * EPS      # the texture was learnt
    assert m.delta.abs().max() <= EPS + 1e-7 and 'surface' in repr(m)
    f = m.save(tmp_path / 'uv.mask')
    with safe_open(str(f), 'pt') as h: assert h.metadata()['format_version'] == '3'
    m2 = Mask.load(f)
    assert torch.equal(m2.surface, m.surface) and torch.equal(m2.delta, m.delta)
    # a mask without a surface is written in the same (sealed) format, and read back
    plain = Mask(m.delta, EPS)
    with safe_open(str(plain.save(tmp_path / 'p.mask')), 'pt') as h: assert h.metadata()['format_version'] == '3'
    assert Mask.load(tmp_path / 'p.mask').surface is None
    # applied to another photo of the person (detected, fitted): within ceil(eps*255), only in the face region
    im = Image.open(person[3]).convert('RGB')
    out, info = m2.apply(im, return_info=True)
    d = np.abs(np.asarray(out).astype(int) - np.asarray(im))
    assert 6 <= d.max() <= 8 and d[~m2.region(info['M'], (im.height, im.width))].max(initial=0) == 0
    assert np.array_equal(np.asarray(m.apply(im, M=info['M'])), np.asarray(out))
    with pytest.raises(ValueError, match='no fixed photo delta'): m.photo_delta(info['M'], (im.height, im.width))
    # the array path (video frames) adds the same cloak
    arr = np.array(im); m.add_to(arr, info['M'])
    assert np.array_equal(arr, np.asarray(out))


def test_surface_mask_options_and_warm_start(learnt):
    me, kw, m = learnt
    with pytest.raises(ValueError, match="'uv' needs optimizer 'mifgsm'"): CloakConfig(parameterisation='uv', optimizer='adam')
    with pytest.raises(ValueError, match="parameterisation='uv'"): learn_mask(images=me, init=m, **{**kw, 'steps': 1})
    m0 = learn_mask(images=me, init=m, parameterisation='uv', **{**kw, 'steps': 0})
    assert torch.equal(m0.surface, m.surface) and torch.equal(m0.delta, m.delta)
    with pytest.raises(ValueError, match='surface exceeds epsilon'): Mask(m.delta, EPS, surface=m.surface * 2)


@settings(max_examples=8, deadline=None)
@given(scale=st.floats(0.3, 1.2), angle=st.floats(-20, 20), seed=st.integers(0, 1000), eps_levels=st.integers(1, 12))
def test_surface_photo_bound_property(person, scale, angle, seed, eps_levels):
    "Any texture, any placement of the face: the 8-bit photo moves by <= ceil(eps*255) in the region and 0 outside."
    eps = eps_levels / 255 * 0.97
    im = Image.open(person[2]).convert('RGB')
    M0 = align.align(im).M
    A = sim_M(scale, angle, 0, 0)                           # the photo resized/rotated about its corner: a new placement
    big = im.transform((int(250 / scale) + 1,) * 2, Image.AFFINE, tuple(A.reshape(-1)), Image.BILINEAR)
    M = np.vstack([M0, [0, 0, 1]])[:2] @ np.vstack([A, [0, 0, 1]])
    g = torch.Generator().manual_seed(seed)
    m = Mask((torch.rand(1, 3, 112, 112, generator=g) * 2 - 1) * eps, eps, surface=_smooth_texture(seed, eps))
    out = np.asarray(m.apply(big, M=M)).astype(int)
    d = np.abs(out - np.asarray(big))
    assert d.max() <= math.ceil(eps * 255)
    assert d[~m.region(M, (big.height, big.width))].max(initial=0) == 0


def test_the_surface_mask_stays_on_the_features_when_the_head_turns(person):
    "Re-pose a photo by 30° of yaw: at the 68 fitted landmarks, the surface mask's change correlates across the poses, the aligned mask's much less."
    im = align.load_photo(person[0])
    x = align.to_tensor(im, 'cpu')
    f0 = face3d.fit(im, align.detect(im)[0].box)
    turned, _ = face3d.render_pose(x, f0, yaw=30)
    crops = torch.cat([align.align(v, size=(112, 112)).image.cpu() for v in (x, turned)])
    tex = _smooth_texture(3, sigma=1.5)
    m_uv, m_2d = Mask(torch.zeros(1, 3, 112, 112), EPS, surface=tex), Mask(tex, EPS)
    lms = [face3d.fit(c[None]).landmarks() for c in crops]
    keep = np.all([((l >= 2) & (l <= 109)).all(1) for l in lms], 0)      # landmarks inside both crops
    def at_landmarks(mask):
        return [mask.on_face(c[None]).delta[0, 0][l[keep, 1].round().astype(int), l[keep, 0].round().astype(int)].numpy()
                for c, l in zip(crops, lms)]
    assert keep.sum() > 30 and float(surface_maps(crops)[1].mean()) > 0.3
    c_uv, c_2d = (float(np.corrcoef(*at_landmarks(mk))[0, 1]) for mk in (m_uv, m_2d))
    assert c_uv > 0.6 and c_uv > c_2d + 0.2, (c_uv, c_2d)     # 0.74 against 0.33 here


def _fine(t):
    "Energy of `t` at the finest scale: what is left after a 1-px blur, relative to the whole."
    return float((t - gaussian_blur(t, 1.0)).pow(2).mean() / t.pow(2).mean())


def test_band_limited_surface_mask(learnt, person):
    "`parameterisation='smooth_uv'`: the texture and the aligned part are band-limited, within ε, and applied as learnt."
    me, kw, m = learnt
    ms = learn_mask(images=me, parameterisation='smooth_uv', band=1.0, **kw)
    assert ms.meta['options']['parameterisation'] == 'smooth_uv' and ms.surface is not None
    assert ms.surface.abs().max() <= EPS + 1e-7 and ms.delta.abs().max() <= EPS + 1e-7
    assert ms.surface.abs().max() > 0.2 * EPS                                  # it still learnt something
    assert _fine(ms.surface) < 0.5 * _fine(m.surface) and _fine(ms.delta) < 0.5 * _fine(m.delta)
    # the aligned mask for a face is the band-limited texture seen on it: as smooth as the texture
    crop = align.align(person[3], size=(112, 112)).image.cpu()
    assert _fine(ms.on_face(crop).delta) < 0.5 * _fine(m.on_face(crop).delta)
    im = Image.open(person[3]).convert('RGB')
    d = np.abs(np.asarray(ms.apply(im)).astype(int) - np.asarray(im))
    assert 1 <= d.max() <= 8
    with pytest.raises(ValueError, match="'smooth_uv' needs optimizer"): CloakConfig(parameterisation='smooth_uv', optimizer='adam')


def test_uv_step_weights_reach_both_parameters():
    "The leakage weight steps θ per pixel; the texture, which has no aligned pixels, takes its mean."
    from facecloak.cloak import UVMask
    w = torch.rand(1, 1, 112, 112)
    wt, wx = UVMask((112, 112)).step_weights(w)
    assert wt is w and float(wx) == pytest.approx(float(w.mean())) and wx.dim() == 0
