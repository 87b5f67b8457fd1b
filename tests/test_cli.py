"""The command line and the safety of files: bad inputs, never overwriting, atomic writes, EXIF, names.

These run the real `facecloak` entry point in process (`facecloak.cli.main`) on real photos from the
shared data folder, with a random mask (no learning), so they take seconds.
"""
import hashlib, io, os, shutil, struct, zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facecloak import assets
from facecloak.cli import main, EXIT_OK, EXIT_SKIPPED, EXIT_USAGE, EXIT_NOTHING

pytestmark = pytest.mark.skipif(not assets.available('lfw'), reason='LFW not found: set FACECLOAK_DATA_DIR')

EPS = 8 / 255


def _lfw(name='Colin_Powell', i=1):
    p = assets.lfw_image(name, i)
    if not p.exists(): p = next(iter(assets.lfw_people(min_photos=10).values()))[i - 1]
    return p


def _digest(p): return hashlib.sha256(Path(p).read_bytes()).hexdigest()


@pytest.fixture(scope='module')
def mask_file(tmp_path_factory):
    from facecloak.cloak import random_mask
    p = tmp_path_factory.mktemp('mask')/'me.mask'
    random_mask(epsilon=EPS, seed=0, kind='sign').save(p)
    return p


def _png_with_size(w, h):
    "A tiny PNG whose header claims w x h pixels (a decompression bomb) without the memory."
    def chunk(t, d): return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0))
            + chunk(b'IDAT', zlib.compress(b'\x00' * 16)) + chunk(b'IEND', b''))


@pytest.fixture()
def batch(tmp_path):
    "An input folder with good photos and every kind of bad one."
    d = tmp_path/'in'; (d/'sub').mkdir(parents=True)
    good = _lfw()
    shutil.copy(good, d/'good.jpg')
    shutil.copy(good, d/'sub'/'Zoë 日本 photo.jpg')                       # unicode name, sub-folder
    (d/'not_an_image.jpg').write_text('hello, I am text')
    data = good.read_bytes(); (d/'truncated.jpg').write_bytes(data[:len(data) // 3])
    (d/'empty.png').write_bytes(b'')
    (d/'bomb.png').write_bytes(_png_with_size(40000, 40000))
    frames = [Image.new('RGB', (64, 64), c) for c in ('red', 'blue')]
    frames[0].save(d/'animated.gif', save_all=True, append_images=frames[1:], duration=100, loop=0)
    Image.new('RGB', (200, 200), (120, 130, 140)).save(d/'no_face.png')
    Image.open(good).resize((24, 24)).save(d/'tiny_face.png')
    return d


def test_apply_batch_goes_on_past_bad_inputs(batch, mask_file, tmp_path, capsys):
    out = tmp_path/'out'
    before = {p: _digest(p) for p in batch.rglob('*') if p.is_file()}
    code = main(['apply', str(mask_file), str(batch), str(tmp_path/'missing.jpg'), '-o', str(out), '-q'])
    err = capsys.readouterr()
    assert code == EXIT_SKIPPED
    # the good photos are protected, under their (sanitised) names, sub-folders kept
    assert (out/'good.jpg').exists() and (out/'sub'/'Zoë 日本 photo.jpg').exists()
    # every bad input is reported with a reason naming the problem
    reasons = {l.split(': ', 1)[0].rsplit('/', 1)[-1]: l for l in err.err.splitlines() if l.startswith('skipped ')}
    expect = {'not_an_image.jpg': 'not an image', 'truncated.jpg': 'truncated', 'empty.png': 'empty',
              'bomb.png': 'too large', 'animated.gif': 'animated', 'no_face.png': 'no face',
              'tiny_face.png': 'face', 'missing.jpg': 'no such file'}
    for name, word in expect.items():
        line = reasons.get(name, '')
        assert word in line.lower(), f'{name}: expected a reason with {word!r}, got {line!r}'
    assert '2 protected' in err.out and '8 skipped' in err.out
    # inputs untouched, and no temporary files anywhere
    assert before == {p: _digest(p) for p in batch.rglob('*') if p.is_file()}
    assert not [p for p in out.rglob('*') if p.name.startswith('.') or p.suffix == '.part']


def test_apply_never_overwrites_inputs_or_outputs(mask_file, tmp_path):
    d = tmp_path/'photos'; d.mkdir()
    shutil.copy(_lfw(), d/'a.jpg'); h = _digest(d/'a.jpg')
    # output folder == input folder: the output would be the input itself -> refused, input intact
    assert main(['apply', str(mask_file), str(d), '-o', str(d), '-q']) == EXIT_SKIPPED
    assert _digest(d/'a.jpg') == h and len(list(d.iterdir())) == 1
    out = tmp_path/'out'
    assert main(['apply', str(mask_file), str(d/'a.jpg'), '-o', str(out), '-q']) == EXIT_OK
    first = _digest(out/'a.jpg')
    # a second run does not replace an existing output unless asked
    assert main(['apply', str(mask_file), str(d/'a.jpg'), '-o', str(out), '-q']) == EXIT_SKIPPED
    assert main(['apply', str(mask_file), str(d/'a.jpg'), '-o', str(out), '-q', '--overwrite']) == EXIT_OK
    assert _digest(out/'a.jpg') == first     # deterministic


def test_apply_keeps_resolution_orientation_profile_and_strips_gps(mask_file, tmp_path):
    src = Image.open(_lfw()).convert('RGB').crop((0, 20, 250, 230))    # 250 x 210, upright
    ex = Image.Exif(); ex[0x0112] = 6; ex[0x010F] = 'PhoneMaker'; ex.get_ifd(0x8825)[2] = (48.0, 51.0, 30.0)
    icc = b'\x00' * 8 + b'fake-icc-profile'
    p = tmp_path/'rot.jpg'; src.transpose(Image.ROTATE_90).save(p, 'JPEG', quality=95, exif=ex.tobytes(), icc_profile=icc)
    out = tmp_path/'out'
    assert main(['apply', str(mask_file), str(p), '-o', str(out), '-q']) == EXIT_OK
    r = Image.open(out/'rot.jpg')
    assert r.size == src.size          # stored sideways with orientation 6: written upright
    assert 0x0112 not in r.getexif() and 0x010F not in r.getexif() and not r.getexif().get_ifd(0x8825)
    assert r.info.get('icc_profile') == icc
    assert main(['apply', str(mask_file), str(p), '-o', str(tmp_path/'out2'), '-q', '--format', 'png']) == EXIT_OK
    assert Image.open(tmp_path/'out2'/'rot.png').size == r.size


def test_apply_bad_mask_and_empty_inputs(tmp_path, capsys):
    d = tmp_path/'empty'; d.mkdir()
    bad = tmp_path/'bad.mask'; bad.write_bytes(b'\x00' * 100)
    assert main(['apply', str(bad), str(d), '-o', str(tmp_path/'o')]) == EXIT_USAGE
    assert 'bad.mask' in capsys.readouterr().err


def test_png_output_is_within_epsilon_and_only_on_the_face(mask_file, tmp_path):
    src = _lfw(); out = tmp_path/'o'
    assert main(['apply', str(mask_file), str(src), '-o', str(out), '--format', 'png', '-q']) == EXIT_OK
    a = np.asarray(Image.open(src).convert('RGB')).astype(int); b = np.asarray(Image.open(out/(src.stem + '.png'))).astype(int)
    diff = np.abs(a - b)
    assert diff.max() <= round(EPS * 255) + 1 and diff.max() > 0
    from facecloak.align import detect
    x1, y1, x2, y2 = detect(Image.open(src))[0].box
    w, h = x2 - x1, y2 - y1
    outside = np.ones(diff.shape[:2], bool)
    outside[max(0, int(y1 - h)):int(y2 + h), max(0, int(x1 - w)):int(x2 + w)] = False
    assert diff[outside].max() == 0


def test_exit_codes_for_usage_errors(tmp_path, capsys):
    assert main(['apply', 'nope.mask', str(tmp_path), '-o', str(tmp_path/'o')]) == EXIT_USAGE
    d = tmp_path/'d'; d.mkdir(); (d/'notes.txt').write_text('x')
    from facecloak.cloak import random_mask
    m = tmp_path/'m.mask'; random_mask(epsilon=EPS).save(m)
    assert main(['apply', str(m), str(d), '-o', str(tmp_path/'o')]) == EXIT_NOTHING
    assert main(['learn', 'x.jpg', '-o', str(tmp_path/'m2.mask'), '--epsilon', '0']) == EXIT_USAGE
    with pytest.raises(SystemExit) as e: main(['apply'])
    assert e.value.code == 2
