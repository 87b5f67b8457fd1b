"""What the FLIP visibility term changes, at 100 %: one development person's mask learnt with today's SSIM term and
with SSIM plus FLIP, both at ε 12/255, applied to a 1024² CelebA-HQ portrait (as `facecloak eval --portraits` does).

    python experiments/flip_look.py --out figures/flip_look.png

Rows: the two masks. Columns: the face at 100 % (a 256-px crop), the difference ×5, FLIP's error map of the crop
(`facecloak.perception.flip_map`, 0 black to 0.5 white) and the numbers of the whole face: SSIM, JOD, FLIP."""
import argparse
import numpy as np, torch

from facecloak import align
from facecloak.app import magnified
from facecloak.attacker import native_quality, portrait_photos
from facecloak.cloak import learn_mask
from facecloak.evaluate import subjects
from facecloak.perception import flip_map

MEASURES = ('ssim', 'ssim+0.5*flip')


def main(a):
    torch.set_num_threads(a.threads)
    person = subjects(1, max_probes=1, seed=0, split='dev')[0]
    path = portrait_photos(1)[0]
    photo, face = align.load_photo(path), align.face_landmarks([path], progress=False)[0][0]   # as `portrait_quality` does
    box = tuple(int(round(float(v))) for v in face.box)
    rows = []
    for m in MEASURES:
        mask = learn_mask(person.learn, epsilon=12 / 255, visibility_measure=m, progress=False)
        out = mask.apply(photo, face=face, refine=0)
        q = native_quality(photo, out, box=face.box)          # the face's numbers, as `facecloak eval --portraits` reports them
        v = dict(ssim=q['ssim_face'], jod=q['jod_face'], flip=q['flip_face'])
        yb = (box[1] + box[3]) // 2 - 128, (box[1] + box[3]) // 2 + 128
        ca, cb, _ = magnified(photo, out, side=256, box=(yb[0], yb[1], (box[0] + box[2]) // 2 - 1, (box[0] + box[2]) // 2 + 1))
        cd = np.clip(128 + 5 * (np.asarray(cb, np.int16) - np.asarray(ca, np.int16)), 0, 255).astype(np.uint8)
        t = lambda i: torch.from_numpy(np.asarray(i, np.float32) / 255).permute(2, 0, 1)[None]
        with torch.no_grad(): fm = flip_map(t(ca), t(cb))[0].numpy()
        rows.append((m, cb, cd, fm, v))
        print(m, {k: round(float(x), 4) for k, x in v.items()})
    import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt
    fig, axs = plt.subplots(len(rows), 3, figsize=(9, 3.3 * len(rows)))
    for row, (m, cb, cd, fm, v) in zip(axs, rows):
        row[0].imshow(cb); row[0].set_title(f"'{m}', ε 12: face at 100 %", fontsize=8)
        row[1].imshow(cd); row[1].set_title(f"difference ×5; face: SSIM {v['ssim']:.3f}, {v['jod']:.2f} JOD", fontsize=8)
        row[2].imshow(fm, cmap='gray', vmin=0, vmax=0.5); row[2].set_title(f"FLIP map (0-0.5); face: FLIP {v['flip']:.3f}", fontsize=8)
        for ax in row: ax.axis('off')
    fig.suptitle('One development person\'s mask on a 1024² portrait (visibility_measure)', fontsize=10)
    fig.tight_layout(); fig.savefig(a.out, dpi=100); print(f'wrote {a.out}')


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--out', default='figures/flip_look.png'); p.add_argument('--threads', type=int, default=1)
    main(p.parse_args())
