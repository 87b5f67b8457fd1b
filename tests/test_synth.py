"Fast checks of facecloak.synth that need no weights or data (the notebook tests the rest)."
import numpy as np, pytest, torch
from facecloak.align import ARCFACE_112, apply_affine, similarity_transform
from facecloak.synth import (MEAN_68, FaceCanvas, five_points, tps_map, render, finish, generic_landmarks,
                             pose, expression, relight, camera, occlude, generate, BACKENDS, BACKEND_MODULES, OCCLUDERS)

def _canvas(seed=0):
    g = torch.Generator().manual_seed(seed)
    img = torch.nn.functional.avg_pool2d(torch.rand(1, 3, 140, 140, generator=g), 5, 1, 2)
    lm = (MEAN_68 + 14).astype(np.float32)
    return FaceCanvas(img, lm, lm.copy())

def test_finish_undoes_a_similarity_of_the_landmarks():
    "Moving the landmarks by a similarity and re-aligning brings the five points back onto the original ones."
    fc = _canvas(); M = np.array([[1.02, 0.05, -2.], [-0.05, 1.02, 1.5]])
    moved = fc.replace(lm=apply_affine(M, fc.lm))
    np.testing.assert_allclose(similarity_transform(five_points(moved.lm), five_points(fc.lm0))[:, :2] @ M[:, :2],
                               np.eye(2), atol=1e-5)
    assert finish(moved).shape == (1, 3, 112, 112)
    assert (finish(moved) - finish(fc)).abs().mean() > 1e-3     # the canvas itself did not move, so the crop does

def test_generic_landmarks_follow_five_points():
    lm5 = apply_affine(np.array([[0.8, 0, 10], [0, 0.8, 5]]), ARCFACE_112)
    np.testing.assert_allclose(five_points(generic_landmarks(lm5)), lm5, atol=2.5)

def test_tps_interpolates():
    q = MEAN_68 + np.array([2., 1.], np.float32)
    sx, sy = tps_map(MEAN_68 + 14, q + 14, 140, reg=1e-7)
    x, y = (MEAN_68[33] + 14).round().astype(int)
    assert abs(float(sx[y, x]) - (x + 2)) < 0.7 and abs(float(sy[y, x]) - (y + 1)) < 0.7

def test_render_identity_and_shift():
    fc = _canvas(); g = torch.arange(140.); ys, xs = torch.meshgrid(g, g, indexing='ij')
    torch.testing.assert_close(render(fc.image, xs, ys, torch.zeros(140, 140)), fc.image, atol=1e-4, rtol=0)
    out = render(fc.image, xs + 3, ys, torch.zeros(140, 140))
    torch.testing.assert_close(out[..., 20:120, 23:120], fc.image[..., 20:120, 20:117], atol=1e-4, rtol=0)

@pytest.mark.parametrize('fn', [pose, expression, relight, camera, occlude])
def test_strength_zero_is_identity(fn):
    fc = _canvas(); out, rec = fn(fc, 0., rng=0)
    torch.testing.assert_close(finish(out), finish(fc), atol=2e-3, rtol=0)
    with pytest.raises(ValueError, match='strength'): fn(fc, -0.1)

@pytest.mark.parametrize('kind', OCCLUDERS)
def test_occluders_draw_and_are_seeded(kind):
    fc = _canvas(2)
    a, ra = occlude(fc, 0.6, kind=kind, rng=3); b, rb = occlude(fc, 0.6, kind=kind, rng=3)
    assert ra == rb and ra['kind'] == kind and torch.equal(a.image, b.image)
    assert (a.image - fc.image).abs().amax(1).gt(0.1).float().mean() > 0.01
    np.testing.assert_array_equal(a.lm, fc.lm)                 # an occluder moves no landmark

def test_generate_offline_without_bank():
    fc = _canvas(1)
    s = generate(fc, 3, bank=None, seed=3, device='cpu')
    assert s.images.shape == (4, 3, 112, 112) and s.transforms[0] == []
    torch.testing.assert_close(s.images[:1], finish(fc))
    assert {'offline', 'img2img', 'arc2face', '3dmm'} <= set(BACKENDS) | set(BACKEND_MODULES)
    with pytest.raises(ValueError, match="unknown synth backend 'gan'.*'arc2face'"): generate(fc, 1, backend='gan')

def test_diffusers_backends_load_on_first_use():
    "img2img and arc2face live in facecloak.synth_diffusion; generate imports it when one is asked for."
    class Pipe:                                    # a stand-in img2img pipeline: hands back the image it gets
        device, unet = torch.device('cpu'), type('UNet', (), {'dtype': torch.float32})
        def __call__(self, image, **kw): return type('Out', (), {'images': image})
    fc = _canvas(4)
    s = generate(fc, 2, backend='img2img', pipe=Pipe(), size=140, device='cpu')
    assert 'img2img' in BACKENDS and 'arc2face' in BACKENDS
    assert [t[0]['op'] for t in s.transforms[1:]] == ['img2img'] * 2
    torch.testing.assert_close(s.images[1:], finish(fc).expand(2, -1, -1, -1), atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match='strength'): generate(fc, 1, backend='img2img', pipe=Pipe(), strength=1.5)
