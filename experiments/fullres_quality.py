"""Issue #14: the default mask's face quality at the photo's own size, on the large portraits.

Learns the default mask from photo 1 of the first N development-split people (as the `facecloak`
evaluation method) and measures each on every large portrait (`facecloak.evaluate.portrait_photos`: the 56
CelebA-HQ 1024² portraits and the 4 large photos of data/portraits) with `portrait_quality`: face-region
SSIM and PSNR at full resolution, LPIPS when its backbone is present. Prints JSON and writes it to --out.

    python experiments/fullres_quality.py --people 3 --out data/eval/fullres_dev3.json
    python experiments/fullres_quality.py --people 3 --set parameterisation=smooth_uv --set band=0.4 --out data/eval/fullres_dev3_smooth_uv04.json

`--set KEY=VALUE` (repeatable) passes a `learn_mask` option, as `facecloak learn --set` does; `--init prior`
starts each mask from the shipped cross-identity prior (or a mask file), as `facecloak learn --init` does;
`--refine K` applies each mask with K per-photo steps on each portrait (`Mask.apply(photo, refine=K)`, the refine
dial; with `--set refine_visibility=W` those steps weigh the visibility term at the portrait's own magnification):

    python experiments/fullres_quality.py --people 3 --init prior --set visibility=4 --set refine_visibility=4 --refine 5 --out data/eval/fullres_dev3_refine_vis4.json
"""
import argparse, json, time
from pathlib import Path

import numpy as np


class Refined:
    "A mask applied with `refine` per-photo steps (detecting the face itself)."
    def __init__(self, mask, refine): self.mask, self.refine = mask, refine
    def apply(self, photo): return self.mask.apply(photo, refine=self.refine)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--people', type=int, default=3)
    ap.add_argument('--out', default='data/eval/fullres_dev3.json')
    ap.add_argument('--set', action='append', default=[], metavar='KEY=VALUE', help='a learn_mask option')
    ap.add_argument('--init', default=None, help="'prior' (the shipped prior) or a mask file to start from")
    ap.add_argument('--refine', type=int, default=0, help='per-photo steps on each portrait (the refine dial); 0: the mask as learnt')
    a = ap.parse_args(argv)
    from facecloak.cli import config_options
    from facecloak import evaluate as E
    from facecloak.cloak import learn_mask
    photos = E.portrait_photos()
    opts = config_options(a.set)
    if a.init: opts['init'] = a.init
    res = dict(portraits=len(photos), epsilon=None, options=opts, refine=a.refine, people=[])
    for s in E.subjects(a.people, split='dev', max_probes=6):
        t0 = time.perf_counter(); m = learn_mask(s.learn, progress=False, **E.learn_options(opts))
        res['epsilon'] = round(m.epsilon * 255, 3)          # the mask's budget in grey levels (learn_mask's default unless --set)
        q = E.portrait_quality(Refined(m, a.refine) if a.refine else m, photos, lpips_net='alex')
        res['people'].append(dict(person=s.name, learn_s=round(time.perf_counter() - t0, 1),
                                  **{k: v for k, v in q.items() if k != 'per_photo'},
                                  celebahq_ssim_face=float(np.mean([r['ssim_face'] for r in q['per_photo'] if r['size'] == [1024, 1024]])),
                                  per_photo=[{k: r[k] for k in ('photo', 'size', 'ssim_face', 'psnr_face')} for r in q['per_photo']]))
    res['mean_ssim_face'] = float(np.mean([p['ssim_face'] for p in res['people']]))
    res['mean_celebahq_ssim_face'] = float(np.mean([p['celebahq_ssim_face'] for p in res['people']]))
    Path(a.out).parent.mkdir(parents=True, exist_ok=True); Path(a.out).write_text(json.dumps(res, indent=1))
    print(json.dumps({k: v for k, v in res.items() if k != 'people'} | dict(per_person=[
        {k: p[k] for k in ('person', 'ssim_face', 'psnr_face', 'celebahq_ssim_face', 'n')} for p in res['people']]), indent=1))


if __name__ == '__main__':
    main()
