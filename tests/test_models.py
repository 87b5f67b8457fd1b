"Contract tests of facecloak.models (the notebook nbs/02_models.ipynb holds the detailed ones)."
import pytest, torch
from facecloak import models as M
from facecloak.assets import available

def test_contract_names():
    assert M.SURROGATES == ['mobilefacenet_ms1m', 'mobilefacenet_casia', 'edgeface_xxs']
    assert M.TARGETS == ['mobilefacenet_ms1m', 'mobilefacenet_paddlex', 'mobilefacenet_casia', 'edgeface_xxs', 'edgeface_xs']
    for n in ['mobilefacenet_ms1m', 'mobilefacenet_ms1m_onnx', 'mobilefacenet_paddlex', 'mobilefacenet_casia',
              'edgeface_xxs', 'edgeface_xs', 'ir152', 'irse50', 'ir50', 'facenet_vggface2', 'facenet_casia', 'buffalo_l', 'antelopev2']:
        assert n in M.list_models(present_only=False)
    assert set(M.list_models()) <= set(M.list_models(present_only=False))
    for n, t in M.LFW_THRESHOLDS.items():
        assert n in M.LOADERS and -1 < t['far1e-3'] < 1 and t['far1e-2'] < t['far1e-3']

@pytest.mark.skipif(not all(available(n) for n in M.SURROGATES), reason='surrogate weights absent')
def test_ensemble_gradients():
    ens = M.load_ensemble(device='cpu')
    assert ens.names == M.SURROGATES
    x = torch.rand(2, 3, 112, 112, requires_grad=True)
    embs = ens(x)
    assert [e.shape[0] for e in embs] == [2, 2, 2]
    for e in embs: torch.testing.assert_close(e.norm(dim=1), torch.ones(2), atol=1e-4, rtol=0)
    # the same identity under a small perturbation, a different embedding for another image
    sum(e[0] @ e[1] for e in embs).backward()
    assert x.grad.abs().sum() > 0
    assert all(not p.requires_grad for p in ens.parameters())

def test_bad_input():
    m = M.FaceModel(torch.nn.Flatten(), 'flat', 3 * 112 * 112)
    with pytest.raises(ValueError, match='N,3,H,W'): m(torch.rand(1, 4, 112, 112))
    with pytest.raises(ValueError, match=r'\[0,1\]'): m(torch.rand(1, 3, 112, 112) * 255)
    with pytest.raises(ValueError, match='unknown model'): M.load_model('nope')


def test_lfw_alignment_falls_back_to_mean_landmarks(tmp_path):
    "A photo where no face is found is scored at the mean LFW landmarks, as the LFW protocol needs."
    from PIL import Image
    from facecloak import assets, models
    from facecloak.align import align_paths
    if not assets.available('lfw'): pytest.skip('LFW not found')
    good = next(iter(assets.lfw_people(min_photos=10).values()))[0]
    blank = tmp_path/'blank.jpg'; Image.new('RGB', (250, 250), (128, 128, 128)).save(blank)
    x = models._align_chunk(align_paths, [good, blank])
    assert x.shape == (2, 3, 112, 112)
    assert torch.allclose(x[1], models._warp_landmarks(blank, models.LFW_MEAN_LANDMARKS))
    assert torch.allclose(x[0], align_paths([good], progress=False).cpu()[0])
