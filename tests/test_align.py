"""Tests of facecloak.align that notebooks do badly: files on disk, every kind of bad input, fuzzing.

Run: pytest tests/test_align.py -q   (real photos come from FACECLOAK_DATA_DIR; without them those tests fail
with the asset's "not found" message)
"""
import io, json, os, subprocess, sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, assume, given, settings, strategies as st
from PIL import Image

from facecloak import align as A
from facecloak.assets import data_path
from facecloak.testing import bomb_png, lfw_photo, similarity_matrix

fuzz = settings(deadline=None, max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    "Every test gets its own landmark cache, never the user's."
    monkeypatch.setenv('FACECLOAK_CACHE_DIR', str(tmp_path/'cache'))


PERSON = 'Aaron_Peirsol'   # whose photos the tests read


def _png_bytes(im, **kw):
    b = io.BytesIO(); im.save(b, 'PNG', **kw); return b.getvalue()


# ---------------------------------------------------------------- bad inputs: each raises PhotoError naming file + problem
def _raises(src, *words, **kw):
    with pytest.raises(A.PhotoError) as e: A.load_photo(src, **kw)
    msg = str(e.value)
    for w in words: assert w in msg, msg
    return msg


def test_missing_file(tmp_path):
    _raises(tmp_path/'nope.jpg', 'nope.jpg', 'no such file')


def test_directory(tmp_path):
    _raises(tmp_path, str(tmp_path), 'directory')


def test_zero_byte_file(tmp_path):
    p = tmp_path/'empty.jpg'; p.write_bytes(b'')
    _raises(p, 'empty.jpg', '0 bytes')
    _raises(b'', '0 bytes')


def test_zero_size_image():
    _raises(Image.new('RGB', (0, 0)), 'zero-size')
    _raises(np.zeros((0, 5, 3), np.uint8), 'empty')


def test_not_an_image(tmp_path):
    p = tmp_path/'notes.jpg'; p.write_text('these are my holiday notes, not a photo')
    _raises(p, 'notes.jpg', 'not an image')


def test_truncated_jpeg(tmp_path):
    data = lfw_photo(PERSON).read_bytes()
    p = tmp_path/'cut.jpg'; p.write_bytes(data[:len(data)//2])
    _raises(p, 'cut.jpg', 'truncated')


def test_truncated_png(tmp_path):
    im = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    p = tmp_path/'cut.png'; p.write_bytes(_png_bytes(im)[:2000])
    _raises(p, 'cut.png', 'truncated')


@pytest.mark.parametrize('fmt', ['GIF', 'PNG', 'WEBP', 'TIFF'])
def test_animated_or_multiframe(tmp_path, fmt):
    frames = [Image.new('RGB', (16, 16), c) for c in ('red', 'green', 'blue')]
    p = tmp_path/f'anim.{fmt.lower()}'
    frames[0].save(p, fmt, save_all=True, append_images=frames[1:])
    if getattr(Image.open(p), 'n_frames', 1) < 2: pytest.skip(f'this Pillow writes a single frame {fmt}')
    _raises(p, p.name, 'animated')


def test_single_frame_gif_is_fine(tmp_path):
    p = tmp_path/'still.gif'; Image.new('RGB', (10, 8), (200, 30, 30)).save(p)
    im = A.load_photo(p)
    assert im.mode == 'RGB' and im.size == (10, 8) and np.abs(np.int16(im.getpixel((3, 3))) - (200, 30, 30)).max() <= 8


def test_pixel_limit(tmp_path):
    p = tmp_path/'big.png'; Image.new('RGB', (2000, 1500)).save(p)
    _raises(p, 'big.png', 'over the limit', max_pixels=1_000_000)
    assert A.load_photo(p, max_pixels=None).size == (2000, 1500)


def test_decompression_bomb_refused_before_decoding(tmp_path):
    p = tmp_path/'bomb.png'; p.write_bytes(bomb_png(100_000, 100_000))      # 10 gigapixels, 30 GB as RGB
    _raises(p, 'bomb.png', 'too large')
    p.write_bytes(bomb_png(12_000, 10_000))                                  # under Pillow's limit, over ours
    _raises(p, 'bomb.png', 'over the limit')


def test_unsupported_source_type():
    _raises(12345, 'int')
    _raises(np.zeros((4, 4, 7)), 'shape')


def test_no_face_names_the_file(tmp_path):
    p = tmp_path/'wall.png'; Image.new('RGB', (300, 200), (120, 110, 100)).save(p)
    with pytest.raises(A.NoFaceError) as e: A.align(p)
    assert 'wall.png' in str(e.value) and 'no face' in str(e.value)
    assert isinstance(e.value, A.PhotoError) and isinstance(e.value, ValueError)


# ---------------------------------------------------------------- fuzzing load_photo
@fuzz
@given(st.binary(max_size=400))
def test_fuzz_random_bytes(data):
    try: im = A.load_photo(data)
    except A.PhotoError: return
    assert im.mode == 'RGB'


@fuzz
@given(cut=st.integers(0, 40_000), flips=st.lists(st.tuples(st.integers(0, 40_000), st.integers(0, 255)), max_size=8))
def test_fuzz_corrupted_jpeg(cut, flips):
    data = bytearray(lfw_photo(PERSON).read_bytes())
    for pos, val in flips: data[pos % len(data)] = val
    data = bytes(data[:max(cut, 1)] if cut < len(data) else data)
    try: im = A.load_photo(data)
    except A.PhotoError: return
    assert im.mode == 'RGB' and im.size == (250, 250)


MODES = ['1', 'L', 'P', 'RGB', 'RGBA', 'LA', 'PA', 'CMYK', 'YCbCr', 'I', 'I;16', 'F', 'RGBa', 'La', 'HSV', 'LAB']


@fuzz
@given(mode=st.sampled_from(MODES), w=st.integers(1, 40), h=st.integers(1, 40), seed=st.integers(0, 2**16))
def test_fuzz_modes(mode, w, h, seed):
    rgb = Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 4), dtype=np.uint8), 'RGBA')
    im = rgb.convert(mode) if mode not in ('I;16',) else Image.fromarray(np.asarray(rgb.convert('L')).astype(np.uint16)*257)
    out = A.load_photo(im)
    assert out.mode == 'RGB' and out.size == (w, h)
    if mode in ('L', 'I;16'):   # greyscale value v comes back as (v, v, v), 16-bit scaled back to 8
        g = np.asarray(rgb.convert('L'))
        assert np.array_equal(np.asarray(out)[..., 0], g) and np.array_equal(np.asarray(out)[..., 2], g)


def test_alpha_composited_on_white():
    a = np.zeros((2, 2, 4), np.uint8); a[0, 0] = (0, 0, 0, 255); a[1, 1] = (255, 0, 0, 128)
    out = np.asarray(A.load_photo(Image.fromarray(a, 'RGBA'))).astype(int)
    assert (out[0, 1] == 255).all() and (out[0, 0] == 0).all() and abs(out[1, 1] - (255, 127, 127)).max() <= 1
    la = Image.fromarray(np.array([[[10, 0], [10, 255]]], np.uint8), 'LA')
    assert np.asarray(A.load_photo(la)).tolist() == [[[255]*3, [10]*3]]


def test_palette_transparency(tmp_path):
    p = Image.new('P', (3, 1)); p.putpalette([0, 0, 0, 255, 0, 0] + [0]*762); p.putpixel((1, 0), 1)
    p.info['transparency'] = 0
    f = tmp_path/'pal.png'; p.save(f, transparency=0)
    assert np.asarray(A.load_photo(f)).tolist() == [[[255]*3, [255, 0, 0], [255]*3]]


def test_16bit_files(tmp_path):
    import cv2
    g = (np.arange(64, dtype=np.uint16).reshape(8, 8)*1000)
    cv2.imwrite(str(tmp_path/'g16.png'), g)
    out = np.asarray(A.load_photo(tmp_path/'g16.png'))
    assert np.abs(out[..., 1].astype(int) - np.rint(g/257)).max() <= 1
    c = np.stack([g, 65535 - g, g//2], -1)
    cv2.imwrite(str(tmp_path/'c16.png'), c)                                 # 48-bit colour (BGR on disk)
    out = np.asarray(A.load_photo(tmp_path/'c16.png')).astype(int)
    assert np.abs(out - np.rint(c[..., ::-1]/257)).max() <= 1
    i32 = Image.fromarray((np.arange(16, dtype=np.int32).reshape(4, 4)*4000), 'I')
    assert np.asarray(A.load_photo(i32)).max() == round(15*4000/257)


def test_cmyk_jpeg(tmp_path):
    p = tmp_path/'cmyk.jpg'; Image.new('RGB', (8, 8), (20, 200, 120)).convert('CMYK').save(p, quality=95)
    out = np.asarray(A.load_photo(p)).astype(int)
    assert np.abs(out[4, 4] - (20, 200, 120)).max() <= 12


def test_array_and_tensor_sources():
    a = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    assert np.array_equal(np.asarray(A.load_photo(a)), a)
    assert np.array_equal(np.asarray(A.load_photo(a.astype(np.float32)/255)), a)
    assert np.array_equal(np.asarray(A.load_photo(A.to_tensor(Image.fromarray(a), 'cpu'))), a)
    assert np.array_equal(np.asarray(A.load_photo(_png_bytes(Image.fromarray(a)))), a)


# ---------------------------------------------------------------- open_image: the same checks, the mode kept
@fuzz
@given(mode=st.sampled_from(MODES), w=st.integers(1, 40), h=st.integers(1, 40), seed=st.integers(0, 2**16))
def test_fuzz_open_image_keeps_mode_and_load_photo_converts_it(mode, w, h, seed):
    rgb = Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 4), dtype=np.uint8), 'RGBA')
    im = rgb.convert(mode) if mode != 'I;16' else Image.fromarray(np.asarray(rgb.convert('L')).astype(np.uint16)*257)
    got = A.open_image(im)
    assert got.mode == mode and got.size == (w, h) and got.tobytes() == im.tobytes()
    assert np.array_equal(np.asarray(A.load_photo(im.copy())), np.asarray(A._to_rgb8(got)))


@pytest.mark.parametrize('mode,fmt', [('P', 'PNG'), ('LA', 'PNG'), ('RGBA', 'PNG'), ('I;16', 'PNG'),
                                      ('CMYK', 'JPEG'), ('F', 'TIFF'), ('1', 'PNG'), ('L', 'JPEG')])
@pytest.mark.parametrize('o', [1, 6, 3])
def test_open_image_files_keep_mode_and_turn_upright(tmp_path, mode, fmt, o):
    g = np.random.default_rng(0).integers(0, 256, (6, 10, 4), dtype=np.uint8)
    up = Image.fromarray(g, 'RGBA').convert(mode) if mode not in ('I;16', 'F') else \
        Image.fromarray(g[..., 0].astype(np.uint16)*257 if mode == 'I;16' else g[..., 0].astype(np.float32)/255)
    stored = up if _UNDO[o] is None else up.transpose(_UNDO[o])
    ex = Image.Exif(); ex[0x0112] = o
    p = tmp_path/f'x.{fmt.lower()}'; stored.save(p, fmt, exif=ex.tobytes())
    got = A.open_image(p)
    assert got.mode == Image.open(p).mode and got.size == (10, 6) and got.info['source'] == str(p)
    if mode == 'CMYK' and fmt == 'JPEG': assert got.mode == 'CMYK'
    elif fmt != 'JPEG': assert got.mode == mode and np.array_equal(np.asarray(got), np.asarray(up))
    assert np.array_equal(np.asarray(A.load_photo(p)), np.asarray(A._to_rgb8(got)))


def test_open_image_refuses_what_load_photo_refuses(tmp_path):
    (tmp_path/'empty.jpg').write_bytes(b''); (tmp_path/'notes.jpg').write_text('notes')
    (tmp_path/'bomb.png').write_bytes(bomb_png(100_000, 100_000))
    cut = tmp_path/'cut.png'
    cut.write_bytes(_png_bytes(Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)))[:2000])
    for src in [tmp_path/'nope.jpg', tmp_path, tmp_path/'empty.jpg', tmp_path/'notes.jpg', tmp_path/'bomb.png', cut, b'', 12345,
                np.zeros((4, 4, 7)), torch.zeros(2, 3, 4, 4), Image.new('RGB', (0, 0))]:
        msgs = []
        for f in (A.open_image, A.load_photo):
            with pytest.raises(A.PhotoError) as e: f(src)
            msgs.append(str(e.value))
        assert msgs[0] == msgs[1], msgs


def test_open_image_sources():
    a = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    pal = Image.fromarray(a).convert('P')
    b = io.BytesIO(_png_bytes(pal))
    assert A.open_image(b).mode == 'P'                                       # an open binary file
    assert A.open_image(pal) is pal                                          # nothing to do: no copy
    assert np.array_equal(np.asarray(A.open_image(a.astype(np.float32)/255)), a)   # float array in [0,1]
    t = torch.from_numpy(a).permute(2, 0, 1).float()/255
    assert np.array_equal(np.asarray(A.open_image(t)), a) and np.array_equal(np.asarray(A.open_image(t[None])), a)
    assert A.open_image(np.zeros((3, 4), np.uint8)).mode == 'L' and A.open_image(np.zeros((3, 4, 4), np.uint8)).mode == 'RGBA'
    with pytest.raises(A.PhotoError, match='over the limit'): A.open_image(Image.new('P', (200, 200)), max_pixels=1000)
    with pytest.raises(A.PhotoError, match='mine.png'): A.open_image(b'junk', name='mine.png')


# ---------------------------------------------------------------- EXIF orientation: all eight
_UNDO = {1: None, 2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
         5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_270}


def _with_orientation(upright, o, fmt='PNG', **kw):
    "What a camera writes: the sensor image plus the EXIF tag that makes it `upright` when displayed."
    stored = upright if _UNDO[o] is None else upright.transpose(_UNDO[o])
    ex = Image.Exif(); ex[0x0112] = o
    b = io.BytesIO(); stored.save(b, fmt, exif=ex.tobytes(), **kw); return b.getvalue()


@pytest.mark.parametrize('o', range(1, 9))
def test_exif_orientation(o):
    up = Image.fromarray(np.random.default_rng(o).integers(0, 256, (6, 10, 3), dtype=np.uint8))
    got = A.load_photo(_with_orientation(up, o))
    assert got.size == (10, 6) and np.array_equal(np.asarray(got), np.asarray(up))


def test_exif_rotated_phone_photo_aligns_like_upright(tmp_path):
    up = A.load_photo(lfw_photo(PERSON))
    p = tmp_path/'phone.jpg'; p.write_bytes(_with_orientation(up, 6, 'JPEG', quality=95))
    assert Image.open(p).size == (250, 250)                         # square: the tag is what matters
    assert not np.array_equal(np.asarray(Image.open(p).convert('RGB'))[:5], np.asarray(up)[:5])
    a, b = A.align(p), A.align(up)
    assert np.abs(a.face.landmarks - b.face.landmarks).max() < 3
    assert float((a.image - b.image).abs().mean()) < 0.02


# ---------------------------------------------------------------- geometry
sims = st.builds(similarity_matrix, st.floats(0.05, 20), st.floats(-180, 180), st.floats(-500, 500), st.floats(-500, 500))


@fuzz
@given(M=sims, seed=st.integers(0, 2**16))
def test_fuzz_similarity_recovers_transform(M, seed):
    src = np.random.default_rng(seed).uniform(-300, 300, (5, 2))
    assume(src.std(0).min() > 1)
    got = A.similarity_transform(src, A.apply_affine(M, src))
    assert np.allclose(got, M, atol=1e-3*max(1, np.abs(M).max()))


@fuzz
@given(M=sims, seed=st.integers(0, 2**16), noise=st.floats(0, 10))
def test_fuzz_similarity_matches_skimage(M, seed, noise):
    from skimage.transform import SimilarityTransform
    rng = np.random.default_rng(seed)
    src = rng.uniform(0, 300, (5, 2)); dst = A.apply_affine(M, src) + rng.normal(0, noise, (5, 2))
    assume(src.std(0).min() > 5 and np.linalg.svd(dst - dst.mean(0))[1].min() > 1e-3)
    if hasattr(SimilarityTransform, 'from_estimate'): t = SimilarityTransform.from_estimate(src, dst)
    else: t = SimilarityTransform(); t.estimate(src, dst)
    assert np.allclose(A.similarity_transform(src, dst), t.params[:2], atol=1e-6*max(1, np.abs(t.params).max()))
    # and it is the least-squares optimum: no nearby similarity does better
    best = A.similarity_transform(src, dst)
    warp64 = lambda M, p: p @ np.asarray(M, np.float64)[:, :2].T + np.asarray(M, np.float64)[:, 2]   # apply_affine rounds to float32
    r0 = ((warp64(best, src) - dst)**2).sum()
    for d in rng.normal(0, 1e-3, (5, 4)):
        Mp = best @ np.r_[similarity_matrix(1 + d[0], np.degrees(d[1]), d[2], d[3]), [[0, 0, 1]]]
        assert ((warp64(Mp, src) - dst)**2).sum() >= r0 - 1e-6*max(1, r0)


def test_similarity_never_reflects():
    src = A.template(); dst = src.copy(); dst[:, 0] = 112 - dst[:, 0]    # a mirror image
    assert np.linalg.det(A.similarity_transform(src, dst)[:, :2]) > 0


def test_cv2_estimate_agrees_on_exact_points():
    import cv2
    src = A.template().astype(np.float64)*3 + 40; M = similarity_matrix(0.37, np.degrees(0.4), 10, -4)
    cvM, _ = cv2.estimateAffinePartial2D(src, A.apply_affine(M, src).astype(np.float64), method=cv2.LMEDS)
    assert np.allclose(A.similarity_transform(src, A.apply_affine(M, src)), cvM, atol=1e-3)


@fuzz
@given(M=st.builds(similarity_matrix, st.floats(0.3, 3), st.floats(-180, 180), st.floats(-20, 20), st.floats(-20, 20)),
       h=st.integers(8, 60), w=st.integers(8, 60), H=st.integers(8, 60), W=st.integers(8, 60), seed=st.integers(0, 999))
def test_fuzz_torch_warp_equals_cv2(M, h, w, H, W, seed):
    import cv2
    img = np.random.default_rng(seed).random((h, w, 3)).astype(np.float32)
    ref = cv2.warpAffine(img, M, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    out = A.warp_affine(torch.from_numpy(img).permute(2, 0, 1)[None], M, (H, W))[0].permute(1, 2, 0).numpy()
    assert np.abs(out - ref).max() < 1e-4


def test_warp_pixel_centre_convention():
    "A single bright pixel at (x=5, y=3) lands exactly at M @ (5, 3): no half-pixel slips."
    img = torch.zeros(1, 1, 10, 12); img[0, 0, 3, 5] = 1
    M = similarity_matrix(2.0, 0.0, 1.0, 2.0)                                 # (5,3) -> (11, 8)
    out = A.warp_affine(img, M, (20, 24))[0, 0]
    assert tuple(map(int, divmod(int(out.argmax()), 24))) == (8, 11) and abs(float(out[8, 11]) - 1) < 1e-6
    assert torch.allclose(out[8, 10], out[8, 12]) and torch.allclose(out[7, 11], out[9, 11])   # symmetric spread


def test_warp_to_photo_is_differentiable_and_linear():
    M = similarity_matrix(0.8, np.degrees(0.3), -10, 5)
    t = torch.rand(2, 3, 16, 16, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: A.warp_to_photo(x, M, (30, 28)), (t,), eps=1e-6, atol=1e-6)
    a, b = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)
    lhs = A.warp_to_photo(2*a + b, M, (30, 28)); rhs = 2*A.warp_to_photo(a, M, (30, 28)) + A.warp_to_photo(b, M, (30, 28))
    assert torch.allclose(lhs, rhs, atol=1e-5)


def test_warp_to_photo_equals_full_warp():
    "Warping only the aligned box and padding is the same as warping onto the whole photo."
    M = np.r_[A.invert_affine(similarity_matrix(3.1, np.degrees(0.5), 200, 150)), [[0, 0, 1]]][:2]   # photo -> aligned
    t = torch.rand(1, 3, 112, 112)
    full = A.warp_affine(t, A.invert_affine(M), (400, 500))
    assert torch.allclose(A.warp_to_photo(t, M, (400, 500)), full, atol=1e-4)
    # off the photo entirely: all zeros, right shape
    far = np.r_[A.invert_affine(similarity_matrix(1, 0, 5000, 5000)), [[0, 0, 1]]][:2]
    assert A.warp_to_photo(t, far, (40, 50)).abs().sum() == 0 and A.warp_to_photo(t, far, (40, 50)).shape == (1, 3, 40, 50)


@fuzz
@given(scale=st.floats(0.1, 2), angle=st.floats(-0.6, 0.6), seed=st.integers(0, 999))
def test_fuzz_delta_round_trip(scale, angle, seed):
    """aligned delta -> photo -> aligned is the identity inside the square (up to bilinear blur), from photo faces
    10x larger than the template (scale 0.1) to 2x smaller; measured: <0.5% at scale <= 0.5, 1.4% at 2, 4% at 4."""
    g = torch.Generator().manual_seed(seed)
    delta = F.interpolate(torch.rand(1, 3, 8, 8, generator=g) - 0.5, size=(112, 112), mode='bicubic', align_corners=False)
    Ph, Pw = int(112/scale*1.5) + 20, int(112/scale*1.5) + 40          # room for the rotated square
    back = similarity_matrix(1/scale, np.degrees(angle), 0, 0); c = A.apply_affine(back, [[55.5, 55.5]])[0]
    back[:, 2] += np.array([Pw/2, Ph/2]) - c                           # aligned -> photo, centred
    M = A.invert_affine(back)
    on_photo = A.warp_to_photo(delta, M, (Ph, Pw))
    again = A.warp_affine(on_photo, M, (112, 112))
    err = (again - delta)[..., 6:-6, 6:-6].abs()
    assert float(err.mean()) < 0.02*float(delta.abs().mean()) and float(err.max()) < 0.03


def test_photo_round_trip_inside_face_region():
    photo = A.load_photo(lfw_photo(PERSON))
    a = A.align(photo)
    x = A.to_tensor(photo, 'cpu')
    back, reg = a.to_photo(a.image), a.region()
    inside = reg[0, 0] > 0.999
    assert inside.sum() > 10_000 and float(reg[0, 0][~inside].max()) < 1
    err = (back - x).abs()[0].mean(0)[inside]
    assert float(err.mean()) < 3/255
    # outside the region the warp writes nothing
    assert float(back[0].abs().sum(0)[reg[0, 0] == 0].max()) == 0


def test_template_scaling_commutes_with_resize():
    "align at 224 = align at 112 upsampled: the scaled template is centre-consistent."
    rng = np.random.default_rng(0)
    img = Image.fromarray((F.interpolate(torch.rand(1, 3, 20, 20), size=(300, 300), mode='bicubic', align_corners=False)
                           .clamp(0, 1)[0].permute(1, 2, 0).numpy()*255).astype(np.uint8))
    lm = A.template()*1.7 + 40 + rng.normal(0, 1, (5, 2))
    a112, a224 = A.align(img, lm), A.align(img, lm, size=224)
    up = F.interpolate(a112.image, size=(224, 224), mode='bilinear', align_corners=False)
    assert float((up - a224.image)[..., 8:-8, 8:-8].abs().mean()) < 0.01
    expect = 2*a112.M; expect[:, 2] += 0.5
    assert np.allclose(a224.M, expect, atol=1e-6)


# ---------------------------------------------------------------- selection
def test_select_rules():
    A1, B = A.load_photo(lfw_photo(PERSON)), A.load_photo(lfw_photo('Aaron_Eckhart'))
    canvas = Image.new('RGB', (600, 420), (90, 90, 90))
    canvas.paste(A1.resize((160, 160)), (220, 130))                   # small face, centred
    canvas.paste(B.resize((300, 300)), (0, 0))                          # big face, top-left corner
    big, centred = A.align(canvas, select='largest'), A.align(canvas, select='center')
    assert big.face.area > centred.face.area
    assert np.linalg.norm(centred.face.center - [300, 210]) < 60
    with pytest.raises(ValueError, match='select'): A.align(canvas, select='smallest')


# ---------------------------------------------------------------- detect_batch
def test_detect_batch_is_detect_per_photo(tmp_path):
    lfw = [lfw_photo('Aaron_Peirsol', i) for i in (1, 2)]
    big = tmp_path/'big.png'; A.load_photo(lfw_photo('Aaron_Eckhart')).resize((1500, 1500)).save(big)   # detected at 1024
    junk = tmp_path/'junk.jpg'; junk.write_text('nope')
    photos = [lfw[0], big, junk, A.load_photo(lfw[1]), Image.new('RGB', (250, 250), 'grey')]
    for kw in (dict(), dict(max_side=512), dict(threshold=0.999)):
        res = A.detect_batch(photos, device='cpu', **kw)
        assert len(res) == 5 and isinstance(res[2], A.PhotoError) and 'junk.jpg' in str(res[2]) and res[4] == []
        for p, r in zip(photos, res):
            if p is junk: continue
            one = A.detect(p, device='cpu', **kw)
            assert len(r) == len(one) and all(np.allclose(f.landmarks, g.landmarks, atol=1e-2) and
                                              np.allclose(f.box, g.box, atol=1e-2) for f, g in zip(r, one))
        assert all(r[k].area >= r[k + 1].area for r in res if isinstance(r, list) for k in range(len(r) - 1))


def test_detect_batch_groups_and_failures():
    calls = []
    class Det:
        name = 'mtcnn'
        def __call__(self, a): calls.append((1, a.shape)); return A.get_detector('mtcnn', 'cpu')(a)
        def batch(self, arrays):
            calls.append((len(arrays), arrays[0].shape))
            if arrays[0].shape[0] == 90: raise RuntimeError('out of memory')
            return A.get_detector('mtcnn', 'cpu').batch(arrays)
    grey = lambda w, h: Image.new('RGB', (w, h), 'grey')
    res = A.detect_batch([grey(120, 90), lfw_photo(PERSON), grey(120, 90), lfw_photo('Aaron_Eckhart'), grey(60, 60)], Det())
    assert sorted(calls) == [(1, (60, 60, 3)), (2, (90, 120, 3)), (2, (250, 250, 3))]
    assert isinstance(res[0], RuntimeError) and res[0] is res[2] and len(res[1]) == 1 and len(res[3]) == 1 and res[4] == []
    class Short:
        def __call__(self, a): return []
        def batch(self, arrays): return [[]]
    res = A.detect_batch([grey(50, 50), grey(50, 50)], Short())
    assert all(isinstance(r, ValueError) and '1 results for 2 photos' in str(r) for r in res)


def test_face_landmarks_raises_detector_failures_keeps_photo_errors(tmp_path):
    junk = tmp_path/'junk.jpg'; junk.write_text('nope')
    def broken(a): raise RuntimeError('detector broke')
    with pytest.raises(RuntimeError, match='detector broke'): A.face_landmarks([lfw_photo(PERSON), junk], broken, progress=False)
    res = A.face_landmarks([junk, lfw_photo(PERSON)], progress=False)
    assert isinstance(res[0], A.PhotoError) and len(res[1]) == 1


def test_landmark_cache_write_failure_warns(tmp_path, monkeypatch):
    (tmp_path/'ro').write_text('a file where the cache folder should be')
    monkeypatch.setenv('FACECLOAK_CACHE_DIR', str(tmp_path/'ro'))
    with pytest.warns(UserWarning, match='cannot write the landmark cache'):
        res = A.face_landmarks([lfw_photo(PERSON)], progress=False)
    assert len(res[0]) == 1


# ---------------------------------------------------------------- align_paths and its cache
def test_align_paths_cache(tmp_path, monkeypatch):
    src = [lfw_photo('Aaron_Peirsol', i) for i in (1, 2)]
    ps = []
    for i, p in enumerate(src):                                         # copies we may touch
        q = tmp_path/f'p{i}.jpg'; q.write_bytes(p.read_bytes()); ps.append(q)
    x = A.align_paths(ps, progress=False)
    files = sorted((tmp_path/'cache'/'landmarks'/'mtcnn').rglob('*.json'))
    assert len(files) == 2 and json.loads(files[0].read_text())['faces']
    # a cached run does not call the detector at all
    class Boom:
        name = 'mtcnn'
        def __call__(self, *a): raise AssertionError('detector called despite the cache')
    monkeypatch.setattr(A, 'get_detector', lambda *a, **k: Boom())
    assert torch.equal(A.align_paths(ps, progress=False), x)
    # a modified file (new mtime) is detected again
    os.utime(ps[0], ns=(1, 1))
    with pytest.raises(AssertionError, match='despite the cache'): A.align_paths(ps, progress=False)
    monkeypatch.undo()
    assert torch.allclose(A.align_paths(ps, progress=False), x)
    # a corrupt cache entry is recomputed, not fatal
    for f in (tmp_path/'cache'/'landmarks').rglob('*.json'): f.write_text('{broken')
    assert torch.allclose(A.align_paths(ps, progress=False), x)
    # cache=False writes nothing
    monkeypatch.setenv('FACECLOAK_CACHE_DIR', str(tmp_path/'cache2'))
    A.align_paths(ps, cache=False, progress=False)
    assert not (tmp_path/'cache2').exists()


def test_align_paths_missing_and_bad(tmp_path):
    good = lfw_photo(PERSON)
    blank = tmp_path/'blank.png'; Image.new('RGB', (250, 250), 'grey').save(blank)
    junk = tmp_path/'junk.jpg'; junk.write_text('nope')
    with pytest.raises(A.NoFaceError) as e: A.align_paths([good, blank, junk], progress=False)
    assert 'blank.png' in str(e.value) and 'junk.jpg' in str(e.value) and '2 of 3' in str(e.value)
    x, found = A.align_paths([good, blank, junk], on_missing='zeros', return_found=True, progress=False)
    assert x.shape == (3, 3, 112, 112) and found.tolist() == [True, False, False] and x[1:].abs().sum() == 0
    assert A.align_paths([blank, good], on_missing='skip', progress=False).shape == (1, 3, 112, 112)
    with pytest.raises(ValueError): A.align_paths([good], on_missing='ignore')


def test_align_paths_sphereface_and_batching():
    ps = [lfw_photo('Aaron_Peirsol', i) for i in (1, 2, 3)]
    a = A.align_paths(ps, size=(112, 96), template='sphereface', batch_size=2, progress=False)
    b = A.align_paths(ps, progress=False, cache=False)
    assert a.shape == (3, 3, 112, 96)
    assert float((a - b[..., 8:104]).abs().max()) < 1e-4


# ---------------------------------------------------------------- memory on a big photo
def test_big_photo_bounded_memory(tmp_path):
    "A 6000x4000 JPEG aligns without ever holding a float copy of the photo (288 MB)."
    big, celeb = tmp_path/'big.jpg', sorted(data_path('celebahq').glob('*.jpg'))[0]
    Image.open(celeb).resize((4000, 4000)).crop((-1000, 0, 5000, 4000)).save(big, quality=85)
    code = f"""
import resource, torch, json
torch.set_num_threads(1)
from facecloak import align as A
from PIL import Image
A.align({str(celeb)!r})          # warm up: the whole pipeline on a 1024x1024 photo, detection at 1024 px as below
r0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
a = A.align({str(big)!r})
r1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps(dict(delta_mb=(r1 - r0)/1024, photo=a.photo_size, w=float(a.face.box[2] - a.face.box[0]))))
"""
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300, env=os.environ)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res['photo'] == [4000, 6000] and res['w'] > 1500
    # 72 MB for the decoded RGB photo + 18 MB for the half-size copy made while downscaling; a float tensor
    # of the photo alone would be 288 MB
    assert res['delta_mb'] < 160, res
