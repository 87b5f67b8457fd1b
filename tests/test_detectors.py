"""The detectors of `facecloak.detectors` (nbs/01a_detectors.ipynb) as an attacker runs them: YuNet (OpenCV) finds the
face of real LFW photos where MTCNN does, its landmarks in the order of `Face`; a missing weight file is named, with
the folder to put it in, before a detector is loaded and when it is."""
import numpy as np
import pytest
import torch

from facecloak.align import align, detect
from facecloak.assets import AssetNotFoundError
from facecloak.detectors import DETECTORS, detector_name, detector_weights
from facecloak.testing import lfw_photo


@pytest.mark.parametrize('who', [('Aaron_Peirsol', 1), ('George_W_Bush', 5), ('Colin_Powell', 2)])
def test_yunet_finds_the_one_face_of_an_lfw_photo_with_landmarks_close_to_mtcnns(who):
    photo = lfw_photo(*who)
    (y,), m = detect(photo, 'yunet'), detect(photo, 'mtcnn')[0]
    assert y.detector == 'yunet' and y.score >= DETECTORS['yunet'][1]
    assert y.landmarks[0, 0] < y.landmarks[1, 0] and y.landmarks[3, 0] < y.landmarks[4, 0]       # image-left before image-right
    assert y.landmarks[:2, 1].max() < y.landmarks[2, 1] < y.landmarks[3:, 1].min()               # eyes, nose, mouth
    iod = np.linalg.norm(m.landmarks[1] - m.landmarks[0])                                         # about 40 px on LFW
    assert np.abs(y.landmarks - m.landmarks).max() < 0.2 * iod, (y.landmarks, m.landmarks)
    a, b = (align(photo, detector=d).image for d in ('yunet', 'mtcnn'))
    assert torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0) > 0.95         # the same crop, nearly


def test_yunet_finds_no_face_in_a_grey_photo_and_is_registered():
    from PIL import Image
    assert detect(Image.new('RGB', (200, 160), 'grey'), 'yunet') == []
    assert detector_name('yunet') == 'yunet' and detector_weights('yunet').name == 'yunet.onnx'


def test_missing_weights_name_the_file_and_the_folder(tmp_path, monkeypatch):
    monkeypatch.setenv('FACECLOAK_MODEL_DIR', str(tmp_path)); monkeypatch.setenv('FACECLOAK_CACHE_DIR', str(tmp_path))
    for name, file in [('yunet', 'yunet.onnx'), ('retinaface', 'retinaface_mnet025.pth'), ('scrfd', 'scrfd_2.5g_bnkps.onnx')]:
        for load in (lambda: detector_weights(name), lambda: DETECTORS[name][0](torch.device('cpu'))):
            with pytest.raises(AssetNotFoundError) as e: load()
            assert isinstance(e.value, FileNotFoundError)
            assert file in str(e.value) and 'FACECLOAK_MODEL_DIR' in str(e.value) and str(tmp_path) in str(e.value)
    assert detector_weights('mtcnn') is None          # MTCNN's weights ship in the facenet-pytorch wheel
