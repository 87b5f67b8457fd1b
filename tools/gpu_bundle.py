"""Copy what a remote GPU run needs into .devdata/ (git-ignored): weights and an LFW subset.

The subset keeps the evaluation's choices intact: all photos of the `n` evaluation subjects, the
distractors `facecloak.evaluate.Gallery` picks, the anchor pool `facecloak.cloak.pool_people`
draws from, plus the cached synth transfer bank. Run from the repo root:

    python tools/gpu_bundle.py --subjects 25 --distractors 500 --anchors 300
"""
import argparse, shutil
from pathlib import Path
import numpy as np
from facecloak import assets
from facecloak.assets import lfw_people, lfw_roles, cache_dir

MODELS = ['mobilefacenet_ms1m', 'mobilefacenet_paddlex', 'mobilefacenet_casia', 'edgeface_xxs', 'edgeface_xs', 'pfld68']

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--subjects', type=int, default=25); ap.add_argument('--distractors', type=int, default=500)
    ap.add_argument('--anchors', type=int, default=300); ap.add_argument('--out', default='.devdata')
    a = ap.parse_args()
    out = Path(a.out); shutil.rmtree(out, ignore_errors=True)
    for m in MODELS:
        src = assets.asset_path(m); a_ = assets.get_asset(m)
        dst = out/'models'/a_.folder/a_.filename; dst.parent.mkdir(parents=True, exist_ok=True); shutil.copy(src, dst)
    from facecloak.evaluate import subjects
    people, roles = lfw_people(), lfw_roles()
    keep = {}
    for s in subjects(a.subjects, seed=0): keep[s.name] = people[s.name]
    dis = sorted(k for k, r in roles.items() if r == 'distractor')
    for i in sorted(np.random.default_rng(0).permutation(len(dis))[:a.distractors]): keep[dis[i]] = people[dis[i]][:1]
    from facecloak.cloak import pool_people
    for k, v in pool_people('lfw', n_people=a.anchors, per_person=3).items(): keep[k] = v
    root = assets.data_path('lfw')
    for name, ims in keep.items():
        d = out/'data'/'lfw'/'images'/name; d.mkdir(parents=True, exist_ok=True)
        for p in ims: shutil.copy(p, d/p.name)
    shutil.copy(root/'pairs.txt', out/'data'/'lfw'/'pairs.txt')
    bank = cache_dir()/'synth'
    if bank.exists(): shutil.copytree(bank, out/'cache'/'synth')
    n = sum(1 for _ in (out/'data').rglob('*.jpg'))
    size = sum(p.stat().st_size for p in out.rglob('*') if p.is_file())
    print(f'{out}: {len(keep)} people, {n} photos, {size / 2**20:.1f} MiB')

if __name__ == '__main__': main()
