"facecloak.face3d: the 3D face model's files are read safely and verified, and the '3dmm' backend re-poses a real face."
import os, pickle, shutil

import numpy as np, pytest, torch

from facecloak import assets, face3d
from facecloak.assets import AssetNotFoundError, ChecksumError


class _Boom:
    def __reduce__(self): return (os.system, ('echo should-never-run > /tmp/facecloak_pickle_ran',))


def test_safe_unpickle_reads_arrays_and_refuses_code(tmp_path):
    ok = tmp_path/'ok.pkl'; ok.write_bytes(pickle.dumps({'u': np.ones((4, 1), np.float32), 'k': np.arange(3)}))
    d = face3d.safe_unpickle(ok)
    assert d['u'].shape == (4, 1) and d['k'].tolist() == [0, 1, 2]
    bad = tmp_path/'bad.pkl'; bad.write_bytes(pickle.dumps(_Boom()))
    with pytest.raises(pickle.UnpicklingError, match='only NumPy arrays'): face3d.safe_unpickle(bad)
    assert not os.path.exists('/tmp/facecloak_pickle_ran')
    sneaky = tmp_path/'sneaky.pkl'; sneaky.write_bytes(pickle.dumps({'f': np.asarray, 'x': 1}))
    with pytest.raises(pickle.UnpicklingError, match='refusing to load'): face3d.safe_unpickle(sneaky)


def test_files_are_found_verified_and_missing_ones_named(tmp_path):
    p = face3d.face3d_path('bfm_noneck_v3')                    # the store or the installed wheel, checksum verified
    assert p.name == 'bfm_noneck_v3.pkl' and p.stat().st_size == 24_393_598
    tampered = tmp_path/'bfm_noneck_v3.pkl'; shutil.copy(p, tampered)
    with open(tampered, 'r+b') as f: f.seek(1000); b = f.read(1); f.seek(1000); f.write(bytes([b[0] ^ 1]))
    with pytest.raises(ChecksumError): face3d.face3d_path('bfm_noneck_v3', tampered)
    with pytest.raises(AssetNotFoundError, match='does not exist'): face3d.face3d_path('tddfa_mb1_120', tmp_path/'nope.onnx')
    for name in ('bfm_noneck_v3', 'tddfa_param_stats', 'tddfa_mb1_120', 'bfm_tri', 'bfm_uv', 'bfm_indices'):
        a = assets.get_asset(name)
        assert a.sha256 and len(a.sha256) == 64 and a.license and a.source
    assert 'non-commercial' in assets.get_asset('bfm_noneck_v3').license


def test_3dmm_backend_turns_the_face_and_keeps_the_background():
    "A real LFW face: a turn moves the nose across the face, the canvas corners barely change, the set is seeded."
    from facecloak import synth
    photo = assets.lfw_people(min_photos=10)['Andre_Agassi'][1]
    fc = synth.prepare(photo, device='cpu')
    f = face3d.fit(fc.image, landmarks=fc.lm)
    out, info = face3d.render_pose(fc.image, f, yaw=20)
    lm0 = f.landmarks()
    nose_rel = lambda lm: (lm[30, 0] - lm[[0, 16], 0].mean()) / (lm[16, 0] - lm[0, 0])
    assert abs(nose_rel(info.landmarks) - nose_rel(lm0)) > 0.05
    d = (out - fc.image).abs().mean(1)[0]
    assert float(d[:8, :8].mean()) < 0.2 * float(d[50:90, 50:90].mean())     # the corners barely move; the face does
    s1 = synth.generate(photo, 3, backend='3dmm', seed=3, device='cpu')
    s2 = synth.generate(photo, 3, backend='3dmm', seed=3, device='cpu')
    assert torch.equal(s1.images, s2.images) and s1.images.shape == (4, 3, 112, 112)
    assert all(abs(t[0]['yaw']) <= 20 for t in s1.transforms[1:])
