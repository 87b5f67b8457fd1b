"Tests of facecloak.cloak on tiny stand-in surrogates (CPU, seconds): constraints, save/load, apply."
import inspect, io, json, math
from pathlib import Path

import numpy as np, pytest, torch, torch.nn as nn, torch.nn.functional as F
from hypothesis import given, settings, strategies as st
from PIL import Image

import facecloak.synth
from facecloak import assets
from facecloak.cloak import (AnchorBank, CloakConfig, LEARN_INPUTS, LOSS_TERMS, Mask, MaskFileError, Targets, augment_set,
                             anchor_candidates, bank_similarity, build_anchor_bank, diversify, feather_window, identity_loss,
                             learn_mask, make_config, project, random_mask, training_set, visibility)
from facecloak.core import gaussian_blur, seeded
from facecloak.testing import TinyFace as Tiny, face_like, similarity_matrix as sim_M, standins
from facecloak.saliency import budget_weights

EPS = 8 / 255


@pytest.fixture(scope='module')
def setup():
    st = standins(n_bank=10, n_images=5)          # two TinyFaces, a bank of 10 random identities, a person's set of 5
    tiny, bank, me = st.tiny, st.bank, st.me
    # the plain loop on stand-in models: a zero start, the person's own set only, no visibility term (the shipped prior
    # and the other people's photos are for the real surrogates; learn_mask's defaults are tested in 05_cloak and test_cli)
    kw = dict(surrogates=tiny, bank=bank, steps=8, device='cpu', progress=False, init='zero', mix=0, visibility=0.0, epsilon=EPS)
    return tiny, bank, me, kw, learn_mask(images=me, **kw)


def sign_mask(seed=0): return random_mask(epsilon=EPS, seed=seed, kind='sign')


def test_learn_respects_budget_and_moves_identity(setup):
    tiny, bank, me, kw, m = setup
    # the hard cap is eps everywhere, and the budget is used
    assert m.delta.abs().max() <= EPS + 1e-7 and m.delta.abs().max() > 0.9 * EPS
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
    with pytest.raises(ValueError, match='pixel units'): learn_mask(images=me, **{**kw, 'epsilon': 8})
    with pytest.raises(KeyError, match='not in the anchor bank'): learn_mask(images=me, anchor='nobody', **kw)
    with pytest.raises(ValueError, match='exceeds epsilon'): Mask(torch.full((1, 3, 112, 112), 0.1), EPS)


def test_save_load_roundtrip_and_bad_files(setup, tmp_path):
    *_, m = setup
    f = m.save(tmp_path / 'me.mask')
    m2 = Mask.load(f)
    assert torch.equal(m2.delta, m.delta) and m2.anchor == m.anchor and m2.surrogates == m.surrogates
    assert torch.equal(m2.reference['tiny0'], m.reference['tiny0'])
    assert m2.meta == json.loads(json.dumps(m.meta)) and m2.meta['options']['diversity']['jpeg']['quality'] == [60, 95]
    raw = f.read_bytes()
    cases = {'trunc': raw[:len(raw) - 50], 'header': raw[:20], 'text': b'not a mask',
             'json': raw.replace(b'"epsilon', b'"epsilxn', 1),
             'version': raw.replace(b'"format_version":"3"', b'"format_version":"9"', 1)}
    flipped = bytearray(raw); flipped[-10] ^= 1; cases['flip'] = bytes(flipped)
    msgs = {'trunc': 'corrupt or truncated', 'header': 'corrupt or truncated', 'json': "does not match the file's seal",
            'version': "version '9'", 'flip': 'checksum', 'text': 'corrupt or truncated'}
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


def _high_freq(d, sigma):
    "Share of the mean |d| of a (H,W,C) photo-space perturbation that a Gaussian blur of `sigma` px removes."
    t = torch.as_tensor(np.ascontiguousarray(d), dtype=torch.float32).permute(2, 0, 1)[None]
    return float((t - gaussian_blur(t, sigma)).abs().mean() / t.abs().mean())


def test_smooth_masks_keep_the_bound_and_are_smooth_on_a_large_face(setup, tmp_path):
    "The band-limited mask: within ε, smooth once magnified ~4x, and still moving identity."
    tiny, bank, me, kw, m = setup
    ms = learn_mask(images=me, parameterisation='smooth', band=1.0, **kw)
    assert ms.delta.abs().max() <= EPS + 1e-7 and ms.delta.abs().max() > 0.5 * EPS
    assert ms.meta['options']['parameterisation'] == 'smooth'
    with torch.no_grad():
        for mk in (ms,):
            drop = np.mean([float((t(me) @ m.reference[t.name][0]).mean() - (t(mk.apply_aligned(me)) @ m.reference[t.name][0]).mean())
                            for t in tiny])
            assert drop > 0.02, drop
    # saved, loaded and applied to a 1024-px face (4x magnification): the bound holds after 8-bit rounding,
    # and the photo-space cloak has far less fine (blocky) structure than the pixel mask's
    ms2 = Mask.load(ms.save(tmp_path / 's.mask'))
    rng = np.random.default_rng(1)
    photo = Image.fromarray(np.clip(rng.normal(128, 3, (1024, 1024, 3)), 0, 255).astype(np.uint8))
    M = sim_M(112 / 450, 0, -(512 - 225) * 112 / 450, -(512 - 225) * 112 / 450)
    outs = {k: np.asarray(mk.apply(photo, M=M)).astype(int) - np.asarray(photo) for k, mk in (('smooth', ms2), ('pixel', m))}
    assert max(np.abs(d).max() for d in outs.values()) <= 8
    hs, hp = (_high_freq(outs[k][300:724, 300:724], 2.0) for k in ('smooth', 'pixel'))
    assert hs < 0.4 * hp, (hs, hp)
    with pytest.raises(ValueError, match='band must be > 0'): CloakConfig(band=0)
    with pytest.raises(ValueError, match="unknown parameterisation 'blurry'"): CloakConfig(parameterisation='blurry')


def test_visibility_term_makes_the_mask_less_visible_when_magnified(setup):
    "The visibility term (seen by SSIM): the same seeded run with it is within ε, less saturated, less visible magnified 4x, and still moves identity."
    tiny, bank, me, kw, m = setup
    mv = learn_mask(images=me, **{**kw, 'visibility': 8.0, 'visibility_measure': 'ssim'})   # the SSIM measure (FLIP: the next test)
    assert mv.delta.abs().max() <= EPS + 1e-7 and mv.meta['options']['visibility'] == 8.0
    seen = {k: float(visibility(me, mk.effective, 4.0)) for k, mk in (('plain', m), ('visibility', mv))}
    assert seen['visibility'] < 0.7 * seen['plain'], seen
    sat = {k: float((mk.delta.abs() > 0.95 * EPS).float().mean()) for k, mk in (('plain', m), ('visibility', mv))}
    assert sat['visibility'] < sat['plain'], sat
    with torch.no_grad():
        drop = np.mean([float((t(me) @ m.reference[t.name][0]).mean() - (t(mv.apply_aligned(me)) @ m.reference[t.name][0]).mean())
                        for t in tiny])
    assert drop > 0.02, drop
    with pytest.raises(ValueError, match='visibility must be >= 0'): CloakConfig(visibility=-1)
    with pytest.raises(ValueError, match='visibility_scale >= 1'): CloakConfig(visibility_scale=0.5)


def test_flip_visibility_measure_makes_the_mask_less_visible_to_flip(setup):
    "The 'flip' measure: the same seeded run with the term seen by FLIP is within ε, less visible to FLIP magnified 4x than without the term, and records its measure."
    tiny, bank, me, kw, m = setup
    mf = learn_mask(images=me, **{**kw, 'visibility': 8.0, 'visibility_measure': 'flip'})
    assert mf.delta.abs().max() <= EPS + 1e-7 and mf.meta['options']['visibility_measure'] == 'flip'
    seen = {k: float(visibility(me, mk.effective, 4.0, 'flip')) for k, mk in (('plain', m), ('flip', mf))}
    assert seen['flip'] < 0.8 * seen['plain'], seen
    with pytest.raises(ValueError, match="unknown visibility measure 'vdp'"): CloakConfig(visibility_measure='vdp')
    with pytest.raises(ValueError, match="unknown visibility measure 'x' in 'ssim\\+x'"): CloakConfig(visibility_measure='ssim+x')


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
    col = w[:, 56]
    assert w[56, 56] == 1 and col[0] < 0.1 and (col[:57].diff() >= 0).all() and (col[55:].diff() <= 0).all()
    assert (col[:6].diff() > 0).all() and torch.equal(col, col.flip(0)) and torch.equal(w, w.T)


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


def test_other_modes_keep_their_mode_and_locality():
    mask, M = sign_mask(3), sim_M(112 / 140, 8, -40, -30)
    rng = np.random.default_rng(1)
    photo = Image.fromarray(rng.integers(0, 256, (250, 250, 3), dtype=np.uint8))
    reg = mask.region(M, (250, 250))
    for im in (photo.quantize(256), photo.convert('CMYK'), Image.fromarray(np.asarray(photo.convert('L')).astype(np.uint16) * 257)):
        out = mask.apply(im, M=M)
        assert (out.mode, out.size) == (im.mode, im.size)
        d = np.abs(np.asarray(out).astype(np.int64) - np.asarray(im).astype(np.int64)).reshape(250, 250, -1).max(-1)
        assert d[~reg].max() == 0 and d.max() > 0


# --- the learner's pieces ---------------------------------------------------------------------------------

def test_config_defaults_and_checks():
    c = CloakConfig()
    assert (c.epsilon, c.steps, c.n_images, c.w_anchor, c.w_similar, c.leakage_weight, c.optimizer) == (12 / 255, 60, 16, 0.25, 0.25, 0.0, 'mifgsm')
    assert (c.visibility, c.refine_epsilon) == (8.0, 8 / 255)          # the quiet ε 12 mask; the refine dial's steps at the protocol's ε
    assert c.step_length == 12 / 255 / 6 and CloakConfig(step_size=0.01).step_length == 0.01
    assert CloakConfig(diversity=False).diversity == {}
    for kw, msg in [(dict(epsilon=8), 'pixel units'), (dict(epsilon=0), 'pixel units'), (dict(optimizer='sgd'), "unknown optimizer 'sgd'"),
                    (dict(steps=-1), 'steps must be'), (dict(leakage_weight=-0.1), r'leakage_weight must be in \[0, 1\]'),
                    (dict(parameterisation='x'), 'unknown parameterisation'), (dict(leak_method='x'), 'unknown leak_method'),
                    (dict(diversity=dict(p_jpeg=0)), "unknown input transform 'p_jpeg'"), (dict(batch_size=0), 'batch_size'),
                    (dict(refine_epsilon=8), 'refine_epsilon must be'), (dict(refine_purifiers=('jpeg',)), "unknown purifier 'jpeg'")]:
        with pytest.raises(ValueError, match=msg): CloakConfig(**kw)


def test_unknown_keyword_names_the_nearest_option(setup):
    tiny, bank, me, kw, m = setup
    with pytest.raises(TypeError, match="unknown option 'step'; did you mean 'steps'\\?"):
        learn_mask(images=me, step=5, **{k: v for k, v in kw.items() if k != 'steps'})
    with pytest.raises(TypeError, match="did you mean 'images'"): learn_mask(me, image=me)
    with pytest.raises(TypeError, match='leakage_weight = 1 - leak_floor'): learn_mask(images=me, leak_floor=1.0, **kw)
    assert make_config(CloakConfig(steps=3), dict(seed=2)) == CloakConfig(steps=3, seed=2)


def test_learn_inputs_are_learn_mask_keywords():
    params = inspect.signature(learn_mask).parameters
    assert set(LEARN_INPUTS) == {k for k, p in params.items() if p.kind != p.VAR_KEYWORD}
    assert not set(LEARN_INPUTS) & {f for f in CloakConfig.__dataclass_fields__}      # one name per knob


def test_config_and_keywords_give_the_same_mask(setup):
    tiny, bank, me, kw, m = setup
    cfg = CloakConfig(steps=kw['steps'])
    rest = {k: v for k, v in kw.items() if k != 'steps'}
    assert torch.equal(learn_mask(images=me, config=cfg, **rest).delta, m.delta)
    assert learn_mask(images=me, config=cfg, **{**rest, 'steps': 2}).meta['options']['steps'] == 2


def test_learn_sets_its_own_grad_mode(setup):
    "learn_mask works with gradients turned off by the caller and restores the caller's mode."
    tiny, bank, me, kw, m = setup
    with torch.no_grad():
        assert torch.equal(learn_mask(images=me, **kw).delta, m.delta)
        assert not torch.is_grad_enabled()
    prev = torch.is_grad_enabled()
    torch.set_grad_enabled(False)
    try:
        ma = learn_mask(images=me, optimizer='adam', **kw)
        assert not torch.is_grad_enabled()
    finally: torch.set_grad_enabled(prev)
    assert torch.equal(ma.delta, learn_mask(images=me, optimizer='adam', **kw).delta)
    assert torch.is_grad_enabled() == prev


def test_default_training_set_is_augmentation_and_never_runs_stage_1(monkeypatch, setup):
    tiny, bank, me, kw, m = setup
    def boom(*a, **k): raise AssertionError('stage 1 must not run by default')
    monkeypatch.setattr(facecloak.synth, 'generate', boom)
    monkeypatch.setattr(facecloak.synth, 'load_bank', boom)
    x, src = training_set(me[:1], n=5, seed=3)
    assert src == 'augment' and torch.equal(x, augment_set(me[:1], 5, seed=3))
    mk = learn_mask(me[:1], n_images=5, **kw)
    assert mk.meta['source'] == 'augment' and mk.meta['n_images'] == 5
    assert learn_mask(me[:1], synth=False, n_images=5, **kw).meta['source'] == 'augment'


def test_synth_is_opt_in(monkeypatch, setup):
    tiny, bank, me, kw, m = setup
    seen = []
    class Out: images = me
    def fake(photo, **k): seen.append(k); return Out()
    monkeypatch.setattr(facecloak.synth, 'generate', fake)
    assert training_set(me[:1], synth='offline', n=6, seed=2)[1] == 'synth:offline'
    assert seen[-1] == dict(backend='offline', n=5, seed=2)
    assert training_set(me[:1], synth=dict(backend='img2img', strength=0.3), n=4)[1] == 'synth:img2img'
    assert seen[-1] == dict(backend='img2img', strength=0.3, n=3, seed=0)
    assert learn_mask(me[:1], synth='offline', **kw).meta['source'] == 'synth:offline'
    with pytest.raises(TypeError, match='synth must be'): training_set(me[:1], synth=3)


def test_identity_loss_matches_the_formula(setup):
    tiny, bank, me, kw, m = setup
    with torch.no_grad(): embs = [t(me) for t in tiny]
    names = [t.name for t in tiny]
    unit = lambda: {n: F.normalize(torch.randn(1, 32), dim=-1) for n in names}
    t = Targets(names, unit(), unit(), unit())
    loss, stats = identity_loss(embs, t, dict(self=1.0, anchor=0.5, similar=0.25))
    want = np.mean([float((e @ t.reference[n][0] - 0.5 * (e @ t.anchor[n][0]) + 0.25 * (e @ t.similar[n][0])).mean())
                    for n, e in zip(names, embs)])
    assert abs(float(loss) - want) < 1e-6
    assert abs(stats[0][1] - float((embs[0] @ t.anchor[names[0]][0]).mean())) < 1e-6
    t.similar = None                     # no similar identity: the term drops out
    assert abs(float(identity_loss(embs, t, dict(similar=1.0, self=0.0))[0])) < 1e-9


def test_a_new_loss_term_is_one_function(monkeypatch, setup):
    tiny, bank, me, kw, m = setup
    monkeypatch.setitem(LOSS_TERMS, 'hinge', lambda e, t, n: (e @ t.reference[n][0] - 0.3).clamp(min=0))
    mh = learn_mask(images=me, extra_losses=dict(hinge=1.0), **kw)
    assert not torch.equal(mh.delta, m.delta) and mh.delta.abs().max() <= EPS + 1e-7
    with pytest.raises(ValueError, match='unknown extra_losses key'): CloakConfig(extra_losses=dict(nope=1.0))


def test_project_and_diversify_draw_order():
    d = torch.tensor([-1., -0.01, 0., 0.02, 1.]); cap = torch.tensor(0.015)
    assert torch.equal(project(d, cap), torch.tensor([-0.015, -0.01, 0., 0.015, 0.015]))
    x = face_like(3).expand(4, -1, -1, -1)
    div = CloakConfig().diversity
    assert torch.equal(diversify(x, seeded(0), div), diversify(x, seeded(0), div))
    g1, g2 = seeded(9), seeded(9)
    diversify(x, g1, dict(affine=div['affine'], jpeg=dict(p=1.0, quality=(60, 95))))
    for _ in range(4): torch.rand(4, generator=g2)          # the affine: angle, scale, tx, ty
    torch.rand(1, generator=g2); torch.rand(4, generator=g2)   # jpeg: whether, then the qualities
    assert torch.equal(g1.get_state(), g2.get_state())


def test_select_face_by_index_and_largest():
    mask = sign_mask()
    faces = ['a', 'b', 'c']                       # select_face only indexes when it need not recognise
    assert mask.select_face(None, faces, 2) == 'c' and mask.select_face(None, faces, 'largest') == 'a'
    assert mask.select_face(None, faces) == 'a'   # a mask without a reference embedding: the largest
    with pytest.raises(IndexError): mask.select_face(None, faces, 3)


def test_bench_cloak_learn_takes_cloak_options(capsys):
    "benchmarks/bench_cloak.py _learn --set: the options reach the learnt mask (2 steps, real surrogates); bad ones are refused by name first."
    import importlib.util, json
    spec = importlib.util.spec_from_file_location('bench_cloak', Path(__file__).resolve().parent.parent/'benchmarks'/'bench_cloak.py')
    bench = importlib.util.module_from_spec(spec); spec.loader.exec_module(bench)
    with pytest.raises(SystemExit, match="--set: visibility must be a number, got 'high'"): bench.main(['_learn', '--set', 'visibility=high'])
    with pytest.raises(SystemExit, match="--set: unknown option 'bnad'; did you mean 'band'"): bench.main(['speed', '--set', 'bnad=1'])
    bench.main(['_learn', '--threads', '2', '--set', 'steps=2', '--set', 'n_images=2', '--set', 'visibility=2'])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out['steps'] == 2 and out['options'] == dict(steps=2, n_images=2, visibility=2) and out['learn_s'] > 0


def test_bench_prior_takes_cloak_options(tmp_path, capsys):
    "benchmarks/bench_prior.py --set: a band-limited prior (issue #14) from the real surrogates, tiny; a bad option is refused first."
    import importlib.util
    spec = importlib.util.spec_from_file_location('bench_prior', Path(__file__).resolve().parent.parent/'benchmarks'/'bench_prior.py')
    bench = importlib.util.module_from_spec(spec); spec.loader.exec_module(bench)
    bad = tmp_path/'bad.mask'
    with pytest.raises(SystemExit, match="--set: unknown option 'bandwidth'"): bench.main(['--set', 'bandwidth=1', '--out', str(bad)])
    assert not bad.exists()
    out = tmp_path/'p.mask'
    args = ['--people', '3', '--steps', '2', '--batch', '2', '--device', 'cpu', '--set', 'parameterisation=smooth', '--set', 'band=1.0']
    bench.main(args + ['--out', str(out)])
    printed = json.loads(capsys.readouterr().out)
    m = Mask.load(out)
    assert printed['options'] == {'parameterisation': 'smooth', 'band': 1.0}
    assert (m.meta['options']['parameterisation'], m.meta['options']['band']) == ('smooth', 1.0)
    assert '--set band=1.0' in m.meta['provenance']['command']
    bench.main(args[:-4] + ['--out', str(tmp_path/'pixel.mask')])          # the same prior without the band limit
    capsys.readouterr()
    d, dp = (mk.delta[0].permute(1, 2, 0).numpy() for mk in (m, Mask.load(tmp_path/'pixel.mask')))
    assert 0 < np.abs(d).max() <= EPS + 1e-7 and _high_freq(d, 1.0) < 0.5 * _high_freq(dp, 1.0), (_high_freq(d, 1.0), _high_freq(dp, 1.0))
    with pytest.raises(SystemExit, match='exists'): bench.main(args + ['--out', str(out)])   # kept unless --overwrite
    # --init: one more step goes on from a given prior (it moves each pixel by at most one step α from it) ...
    with pytest.raises(SystemExit, match='--init: no prior mask at .*nope.mask'):
        bench.main(args[:-4] + ['--init', str(tmp_path/'nope.mask'), '--out', str(tmp_path/'nope_out.mask')])
    assert not (tmp_path/'nope_out.mask').exists()
    on = tmp_path/'on.mask'
    bench.main(args[:-4] + ['--steps', '1', '--init', str(tmp_path/'pixel.mask'), '--out', str(on)])
    capsys.readouterr()
    mo = Mask.load(on)
    alpha = mo.meta['step_size']
    start, went_on = dp, mo.delta[0].permute(1, 2, 0).numpy()
    assert mo.meta['init'] == 'mask file pixel.mask' and '--init' in mo.meta['provenance']['command']
    assert 0 < np.abs(went_on - start).max() <= alpha + 1e-6
    assert np.abs(went_on).max() > 1.5 * alpha      # ... which one step from zero could not reach
    # --surrogates: a prior per surrogate family, learnt with those models only; an unknown name is refused first
    with pytest.raises(SystemExit, match=r"--surrogates: unknown model\(s\) \['nope'\]"):
        bench.main(args[:-4] + ['--surrogates', 'edgeface_xxs,nope', '--out', str(tmp_path/'fam_bad.mask')])
    assert not (tmp_path/'fam_bad.mask').exists()
    bench.main(args[:-4] + ['--surrogates', 'edgeface_xxs', '--out', str(tmp_path/'fam.mask')])
    assert json.loads(capsys.readouterr().out)['final'].keys() == {'edgeface_xxs'}
    assert Mask.load(tmp_path/'fam.mask').surrogates == ['edgeface_xxs']


def test_bench_refine_times_portraits_with_options(capsys):
    "benchmarks/bench_refine.py --portraits --set (issue #14): times the refine dial on a 1024² portrait with the mask's options; a bad option is refused first."
    import importlib.util
    spec = importlib.util.spec_from_file_location('bench_refine', Path(__file__).resolve().parent.parent/'benchmarks'/'bench_refine.py')
    bench = importlib.util.module_from_spec(spec); spec.loader.exec_module(bench)
    with pytest.raises(SystemExit, match="--set: unknown option 'refine_visiblity'"): bench.main(['--set', 'refine_visiblity=4'])
    bench.main(['--people', '1', '--photos', '1', '--ks', '0,1', '--portraits', '1', '--threads', '1',
                '--set', 'steps=2', '--set', 'refine_visibility=4'])
    out = json.loads(capsys.readouterr().out)
    assert out['options'] == dict(steps=2, refine_visibility=4) and out['portraits'] == 1
    assert set(out['apply_portrait_s']) == {'0', '1'} and all(v > 0 for v in out['apply_portrait_s'].values())
    assert out['apply_portrait_s']['1'] > out['apply_portrait_s']['0']      # one refine step costs more than none
