"Tests of facecloak.cloak on tiny stand-in surrogates (CPU, seconds): constraints, save/load, apply."
import io, math
from pathlib import Path

import numpy as np, pytest, torch, torch.nn as nn, torch.nn.functional as F
from hypothesis import given, settings, strategies as st
from PIL import Image

from facecloak import assets
from facecloak.cloak import (AnchorBank, Mask, MaskFileError, DEFAULTS, augment_set, bank_similarity, blur,
                             budget_weights, build_anchor_bank, feather_window, learn_mask, random_mask, anchor_candidates)

EPS = 8 / 255


class Tiny(nn.Module):
    "Random CNN with the FaceModel interface; the mean feature is removed so that embeddings spread."
    def __init__(self, seed=0, dim=32):
        super().__init__()
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.net = nn.Sequential(nn.Conv2d(3, 8, 5, 2, 2), nn.ReLU(), nn.Conv2d(8, 16, 3, 2, 1), nn.ReLU(),
                                     nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(256, dim))
            with torch.no_grad(): self.register_buffer('mu', self.net(F.avg_pool2d(torch.rand(16, 3, 112, 112), 9, 1, 4) * 2 - 1).mean(0))
        self.name, self.embed_dim = f'tiny{seed}', dim
    def forward(self, x): return F.normalize(self.net(x * 2 - 1) - self.mu, dim=-1)


def face_like(seed):
    g = torch.Generator().manual_seed(seed)
    x = blur(torch.rand(1, 3, 112, 112, generator=g), 3.0)
    return ((x - x.mean()) * 4 + 0.5).clamp(0, 1)


@pytest.fixture(scope='module')
def setup():
    tiny = [Tiny(0), Tiny(1)]
    bank = build_anchor_bank(tiny, {f'id{i:02d}': [face_like(100 + i)] for i in range(10)}, device='cpu', progress=False)
    me = augment_set(face_like(7), 5, seed=0)
    kw = dict(surrogates=tiny, bank=bank, steps=8, device='cpu', progress=False)
    return tiny, bank, me, kw, learn_mask(images=me, **kw)


def sim_M(scale, angle, tx, ty):
    a = math.radians(angle)
    return np.array([[scale * math.cos(a), -scale * math.sin(a), tx], [scale * math.sin(a), scale * math.cos(a), ty]])


def sign_mask(seed=0):
    g = torch.Generator().manual_seed(seed)
    return Mask(torch.where(torch.rand(1, 3, 112, 112, generator=g) < 0.5, -EPS, EPS), EPS)


def test_learn_respects_budget_and_moves_identity(setup):
    tiny, bank, me, kw, m = setup
    # the hard cap is eps everywhere; with leak_cap=True it is eps * w (w from the leakage map)
    assert m.delta.abs().max() <= EPS + 1e-7 and m.delta.abs().max() > 0.9 * EPS
    mc = learn_mask(images=me, leak_cap=True, **kw)
    cap = EPS * budget_weights(mc.leakage, DEFAULTS['leak_floor'])
    assert (mc.delta.abs() <= cap + 1e-7).all() and cap.min() < 0.8 * EPS
    with torch.no_grad():
        clean = np.mean([float((t(me) @ m.reference[t.name][0]).mean()) for t in tiny])
        cloaked = np.mean([float((t(m.apply_aligned(me)) @ m.reference[t.name][0]).mean()) for t in tiny])
        r = random_mask(epsilon=EPS)
        noisy = np.mean([float((t(r.apply_aligned(me)) @ m.reference[t.name][0]).mean()) for t in tiny])
    assert clean - cloaked > 5 * abs(clean - noisy) and clean - cloaked > 0.02
    sim = bank_similarity(m.reference, bank)
    assert m.anchor['name'] == bank.names[int(sim.argmin())]


def test_learn_is_seeded(setup):
    tiny, bank, me, kw, m = setup
    assert torch.equal(learn_mask(images=me, **kw).delta, m.delta)
    assert not torch.equal(learn_mask(images=me, seed=3, **kw).delta, m.delta)


def test_anchor_candidates_ranked(setup):
    tiny, bank, me, kw, m = setup
    far = anchor_candidates(images=me, k=4, surrogates=tiny, bank=bank, device='cpu')
    near = anchor_candidates(images=me, k=4, surrogates=tiny, bank=bank, device='cpu', order='near')
    assert [c['rank'] for c in far] == [0, 1, 2, 3]
    assert all(a['similarity'] <= b['similarity'] for a, b in zip(far, far[1:]))
    assert near[0]['similarity'] > far[0]['similarity'] and far[0]['name'] == m.anchor['name']


def test_bad_arguments(setup):
    tiny, bank, me, kw, m = setup
    with pytest.raises(ValueError, match='pixel units'): learn_mask(images=me, epsilon=8, **kw)
    with pytest.raises(KeyError, match='not in the anchor bank'): learn_mask(images=me, anchor='nobody', **kw)
    with pytest.raises(ValueError, match='exceeds epsilon'): Mask(torch.full((1, 3, 112, 112), 0.1), EPS)


def test_save_load_roundtrip_and_bad_files(setup, tmp_path):
    *_, m = setup
    f = m.save(tmp_path / 'me.mask')
    m2 = Mask.load(f)
    assert torch.equal(m2.delta, m.delta) and m2.anchor == m.anchor and m2.surrogates == m.surrogates
    assert torch.equal(m2.reference['tiny0'], m.reference['tiny0']) and m2.meta['options'] == m.meta['options'] | {'diversity': m2.meta['options']['diversity']}
    raw = f.read_bytes()
    cases = {'trunc': raw[:len(raw) - 50], 'header': raw[:20], 'text': b'not a mask',
             'json': raw.replace(b'"epsilon', b'"epsilxn', 1),
             'version': raw.replace(b'"format_version":"1"', b'"format_version":"2"', 1)}
    flipped = bytearray(raw); flipped[-10] ^= 1; cases['flip'] = bytes(flipped)
    msgs = {'trunc': 'corrupt or truncated', 'header': 'corrupt or truncated', 'json': 'metadata is corrupt',
            'version': "version '2'", 'flip': 'checksum', 'text': 'corrupt or truncated'}
    for k, data in cases.items():
        p = tmp_path / f'{k}.mask'; p.write_bytes(data)
        with pytest.raises(MaskFileError, match=msgs[k]): Mask.load(p)
    from safetensors.torch import save_file
    save_file({'delta': m.delta}, str(tmp_path / 'foreign.safetensors'))
    with pytest.raises(MaskFileError, match='not a facecloak mask'): Mask.load(tmp_path / 'foreign.safetensors')


@settings(max_examples=25, deadline=None)
@given(scale=st.floats(0.2, 1.5), angle=st.floats(-30, 30), tx=st.floats(-150, 50), ty=st.floats(-150, 50),
       eps_levels=st.integers(1, 16), seed=st.integers(0, 1000))
def test_photo_bound_and_locality_property(scale, angle, tx, ty, eps_levels, seed):
    "For any similarity and any mask, the 8-bit photo changes by <= ceil(eps*255) in the region and 0 outside."
    eps = eps_levels / 255 * 0.97             # also a non-integer number of levels
    g = torch.Generator().manual_seed(seed)
    mask = Mask((torch.rand(1, 3, 112, 112, generator=g) * 2 - 1) * eps, eps)
    rng = np.random.default_rng(seed)
    photo = Image.fromarray(rng.integers(0, 256, (180, 200, 3), dtype=np.uint8))
    M = sim_M(scale, angle, tx, ty)
    out = np.asarray(mask.apply(photo, M=M)).astype(int)
    d = np.abs(out - np.asarray(photo))
    reg = mask.region(M, (180, 200))
    assert d.max() <= math.ceil(eps * 255)
    assert d[~reg].max(initial=0) == 0


def test_saved_png_and_modes(tmp_path):
    mask = sign_mask()
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 256, (250, 250, 3), dtype=np.uint8))
    M = sim_M(112 / 140, 8, -40, -30)
    mask.apply(photo, M=M).save(tmp_path / 'p.png')
    d = np.abs(np.asarray(Image.open(tmp_path / 'p.png')).astype(int) - np.asarray(photo))
    reg = mask.region(M, (250, 250))
    assert 7 <= d.max() <= 8 and d[~reg].max() == 0 and d[reg].mean() > 2
    for mode in ('RGBA', 'L', 'LA'):
        im = photo.convert(mode); out = mask.apply(im, M=M)
        assert out.mode == mode and out.size == im.size
        assert np.abs(np.asarray(out).astype(int) - np.asarray(im)).max() <= 8


def test_feather_window_smooth():
    w = feather_window((112, 112), 6)[0, 0]
    assert w[56, 56] == 1 and w[0, 56] < 0.1 and (w[:57, 56].diff() >= 0).all()


@pytest.mark.skipif(not assets.available('lfw'), reason='LFW not available')
def test_apply_lfw_with_detection(tmp_path):
    from facecloak.align import align, NoFaceError
    ppl = assets.lfw_people(min_photos=10)
    p = ppl[sorted(ppl)[1]][0]
    im = Image.open(p).convert('RGB')
    mask = sign_mask(1)
    out, info = mask.apply(p, return_info=True)
    out.save(tmp_path / 'o.png')
    d = np.abs(np.asarray(Image.open(tmp_path / 'o.png')).astype(int) - np.asarray(im))
    assert out.size == (250, 250) and d.max() <= 8 and d[~mask.region(info['M'], (250, 250))].max() == 0
    np.testing.assert_allclose(info['M'], align(im).M, atol=1e-3)
    with pytest.raises(NoFaceError): mask.apply(Image.new('RGB', (160, 160), (80, 80, 80)))


@pytest.mark.skipif(not assets.available('celebahq'), reason='CelebA-HQ not available')
def test_apply_celebahq_1024():
    p = sorted(assets.data_path('celebahq').glob('*.jpg'))[1]
    im = Image.open(p).convert('RGB')
    out = sign_mask(2).apply(im)
    d = np.abs(np.asarray(out).astype(int) - np.asarray(im))
    assert out.size == (1024, 1024) and out.mode == 'RGB' and 7 <= d.max() <= 8 and 0.05 < (d > 0).mean() < 0.6


def test_anchor_bank_from_pool(tmp_path):
    from facecloak.cloak import pool_people
    for name in ('ann', 'bob', 'cy'):
        (tmp_path / name).mkdir()
        Image.fromarray((face_like(hash(name) % 100)[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)).save(tmp_path / name / '1.png')
    assert list(pool_people(tmp_path, exclude=['cy'])) == ['ann', 'bob']    # a folder of people
    # photos that are already aligned crops: give them as tensors through a dict pool
    pool = {n: [torch.from_numpy(np.array(Image.open(tmp_path / n / '1.png'))).permute(2, 0, 1)[None].float() / 255]
            for n in ('ann', 'bob', 'cy')}
    bank = build_anchor_bank([Tiny(0)], pool, device='cpu', progress=False, exclude=['bob'])
    assert bank.names == ['ann', 'cy'] and bank.embeddings['tiny0'].shape == (2, 32)
    bank.save(tmp_path / 'b.safetensors')
    assert AnchorBank.load(tmp_path / 'b.safetensors').names == ['ann', 'cy']
