"""The levers that measured no gain, as experiments/plugins.py puts them back: each still runs, keeps the ε bound,
and reads its recorded option spelling. (They were tests in the learner's notebook before they left the library.)"""
import importlib.util, math, pathlib, sys

import pytest, torch, torch.nn as nn

from facecloak.core import seeded
from facecloak.cloak import LOSS_TERMS, TRANSFORMS, CloakConfig, learn_mask, make_config, resolve_targets
from facecloak.testing import face_like, standins

ROOT = pathlib.Path(__file__).resolve().parent.parent
EPS = 8 / 255


@pytest.fixture(scope='module')
def P():
    "experiments/plugins.py, imported once: it registers the levers."
    spec = importlib.util.spec_from_file_location('plugins', ROOT/'experiments'/'plugins.py')
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope='module')
def setup(P):
    st = standins()
    kw = dict(surrogates=st.tiny, bank=st.bank, steps=8, device='cpu', progress=False, init='zero', mix=0, visibility=0.0, epsilon=EPS)
    return st.tiny, st.bank, st.me, kw, learn_mask(images=st.me, **kw)


def test_the_library_has_none_of_them():
    "Before the plugin file is imported (this test runs first in its own module state): no null lever is registered."
    import subprocess
    code = ("from facecloak.cloak import TRANSFORMS, LOSS_TERMS, LEARN_HOOKS, ALIASES, CloakConfig; "
            "print(sorted(TRANSFORMS), sorted(LOSS_TERMS), sorted(LEARN_HOOKS), sorted(ALIASES), "
            "[f for f in ('perceptual', 'pull', 'model_dropout', 'leak_cap', 'feature_depth') if hasattr(CloakConfig(), f)]); "
            "from facecloak.cloak_params import STEP_SCHEDULES; print(sorted(STEP_SCHEDULES))")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "['affine', 'blur', 'jpeg', 'purify'] ['anchor', 'self', 'similar'] [] [] []\n['constant']", out


def test_transfer_transforms(P):
    x4 = face_like(0).expand(4, -1, -1, -1)
    fam = dict(bsr=dict(p=1.0, blocks=3, rotate=5.0), sia=dict(p=1.0, blocks=3), elastic=dict(p=1.0, alpha=2.0),
               scale=dict(p=1.0, low=0.5), admix=dict(p=1.0, eta=0.2))
    for k, kw in fam.items():
        o = TRANSFORMS[k](x4, seeded(0), **kw)
        assert o.shape == x4.shape and torch.equal(TRANSFORMS[k](x4, seeded(0), **kw), o)
        assert (o - x4).abs().mean() > 1e-3, k
        assert torch.equal(TRANSFORMS[k](x4, seeded(0), **{**kw, 'p': 0.0}), x4)
        xg = x4.clone().requires_grad_(True); TRANSFORMS[k](xg, seeded(1), **kw).sum().backward()
        assert xg.grad.abs().sum() > 0, k
    bs = P.block_shuffle(x4, seeded(0), p=1.0, blocks=2)      # only moves pixels
    assert torch.allclose(bs.flatten(1).sort(-1).values, x4.flatten(1).sort(-1).values, atol=1e-6)
    assert len(P._cuts(112, 3, seeded(0))) == 3 and sum(P._cuts(112, 3, seeded(0))) == 112


def test_jnd_map_and_perceptual_weights(P):
    jx = torch.full((1, 3, 64, 64), 0.5); jx[..., 32:] = torch.rand(1, 3, 64, 32, generator=seeded(0))   # flat | textured
    jd = torch.zeros(1, 3, 64, 64); jd[..., :, :16] = 0.05
    j = P.jnd_map((jx - jd).clamp(0, 1))
    assert float(j[0, 0, 32, 24]) == pytest.approx(3 + 3 / 128 * (0.5 * 255 - 127), abs=0.05)   # flat mid-grey: ~3 levels
    assert j[0, 0, 32, 8] > j[0, 0, 32, 24] + 0.5 and j[0, 0, 32, 48] > 4 * j[0, 0, 32, 24]
    pw = P.perceptual_weights(jx, 0.6)
    assert pw.min() >= 0.4 - 1e-6 and pw.max() <= 1 + 1e-6 and pw[0, 0, 32, 48] > 0.9 and pw[0, 0, 32, 24] < 0.6
    with pytest.raises(ValueError, match=r'perceptual must be in \[0, 1\]'): P.perceptual_weights(jx, 1.5)


def test_the_caps_keep_the_bound(P, setup):
    tiny, bank, me, kw, m = setup
    mp = learn_mask(images=me, perceptual=0.6, **kw)                     # the recorded spelling, through ALIASES
    assert mp.meta['options']['hooks'] == {'perceptual': {'p': 0.6}}
    w = P.perceptual_weights(me[:1], 0.6)
    assert (mp.delta.abs() <= EPS * w + 1e-7).all() and w.min() < 0.7
    mc = learn_mask(images=me, leak_cap=True, leakage_weight=0.5, **kw)
    from facecloak.saliency import budget_weights
    cap = EPS * budget_weights(mc.leakage, leakage_weight=0.5)
    assert (mc.delta.abs() <= cap + 1e-7).all() and cap.min() < 0.8 * EPS
    assert (m.delta.abs() > cap + 1e-4).any()                              # without it the cap is ε everywhere
    with pytest.raises(ValueError, match='uniform cap'):
        learn_mask(images=me, perceptual=0.5, parameterisation='uv', **kw)
    with pytest.raises(ValueError, match='perceptual must be in'): make_config(None, dict(perceptual=1.5))


def test_model_dropout(P, setup):
    tiny, bank, me, kw, m = setup
    x4 = me[:4]
    tm = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten()).eval().requires_grad_(False)
    o0 = tm(x4)
    with P.model_dropout([tm], 0.5):
        o1 = tm(x4); assert abs(float((o1 == 0).float().mean()) - 0.5) < 0.05
    assert torch.equal(tm(x4), o0)                                          # the hooks are gone after the with
    before = [t(me).detach() for t in tiny]
    md = learn_mask(images=me, model_dropout=0.2, **kw)
    assert not torch.equal(md.delta, m.delta) and md.delta.abs().max() <= EPS + 1e-7
    for t, b in zip(tiny, before): assert torch.equal(t(me).detach(), b)
    with pytest.raises(ValueError, match=r'model_dropout must be in \[0, 1\)'): CloakConfig(hooks={'model_dropout': {'p': 1.0}})


def test_pull_holds_the_mask_near_its_start(P, setup):
    tiny, bank, me, kw, m = setup
    assert float(P.pull_term(m.delta, m.delta, EPS)) == 0.
    far = {p: float(P.pull_term(learn_mask(images=me, **{**kw, 'init': -m.delta, 'pull': p}).delta, -m.delta, EPS)) for p in (0, 1000)}
    assert far[1000] < 0.5 * far[0], far
    with pytest.raises(ValueError, match='pull must be >= 0'): make_config(None, dict(pull=-1))


def test_feature_term(P, setup):
    tiny, bank, me, kw, m = setup
    tm2 = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.Conv2d(4, 2, 3)).eval().requires_grad_(False)
    assert [c.out_channels for c in P.convolutions(tm2)] == [4, 4, 2]
    with P.feature_taps([tm2], 0.5) as taps:
        tm2(me[:2]); assert torch.equal(taps[0], tm2[:3](me[:2]))
    mf = learn_mask(images=me, feature=1.0, feature_depth=0.5, **kw)
    assert mf.meta['options']['hooks'] == {'feature': {'weight': 1.0, 'depth': 0.5}}
    assert not torch.equal(mf.delta, m.delta) and mf.delta.abs().max() <= EPS + 1e-7
    assert torch.equal(learn_mask(images=me, feature=0.0, **kw).delta, m.delta)      # weight 0: the plain loop, bit for bit


def test_rank_term(P, setup):
    tiny, bank, me, kw, m = setup
    names = ['tiny0', 'tiny1']
    t = resolve_targets(names, tiny, me, bank=bank); tc = resolve_targets(names, tiny, me, bank=bank, crowd=True)
    e = tiny[0](me).detach()
    assert LOSS_TERMS['rank'](e, t, 'tiny0') is None
    rk = LOSS_TERMS['rank'](e, tc, 'tiny0', tau=1e-3, same=2)
    want = e @ tc.reference['tiny0'][0] - (e @ bank.embeddings['tiny0'].T).max(-1).values
    assert torch.allclose(rk, want, atol=1e-2)
    assert torch.allclose(LOSS_TERMS['rank'](e, tc, 'tiny0', same=-2),
                          (e * tc.reference['tiny0']).sum(-1) + 1 - 0.05 * math.log(len(bank)), atol=1e-4)
    mr = learn_mask(images=me, extra_losses={'rank': 1.0}, **kw)
    assert not torch.equal(mr.delta, m.delta) and mr.delta.abs().max() <= EPS + 1e-7


def test_cosine_step_schedule(P, setup):
    "The cosine schedule: α first, falling towards 0; the refine dial takes it by name and keeps the mask's ε."
    from facecloak.cloak_params import STEP_SCHEDULES
    assert STEP_SCHEDULES['cosine'] is P.cosine_schedule
    assert [round(P.cosine_schedule(t, 4), 3) for t in range(4)] == [1.0, 0.854, 0.5, 0.146]
    tiny, bank, me, kw, m = setup
    mc = m.with_options(refine_step_schedule='cosine', refine_step_frac=1.0)
    r, r0 = (x.refined(me[:1], 3, surrogates=tiny, device='cpu', scale=1) for x in (mc, m.with_options(refine_step_frac=1.0)))
    assert r.meta['options']['step_schedule'] == 'cosine' and r0.meta['options']['step_schedule'] == 'constant'
    assert not torch.equal(r.delta, r0.delta) and r.delta.abs().max() <= m.epsilon + 1e-7
