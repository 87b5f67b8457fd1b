"""LFW verification of facecloak's recognition models; prints JSON.

    nice -n 10 python benchmarks/bench_lfw.py                       # all present target models, 10 folds
    python benchmarks/bench_lfw.py --models mobilefacenet_ms1m --folds 1 2 --n-pairs 200

Reports per model: 10-fold protocol accuracy (threshold chosen on the other folds), oracle-threshold
accuracy, the folds 1-2 figures shared/README.md quotes, TAR@FAR1e-3 and the cosine thresholds at
FAR 1e-2 / 1e-3 over all impostor pairs. Embeddings and landmarks are cached (FACECLOAK_CACHE_DIR).
"""
import argparse, json, os, sys, time
os.environ.setdefault('OMP_NUM_THREADS', '1')
import torch
from facecloak.models import TARGETS, lfw_verification, list_models
from facecloak.assets import REGISTRY

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--models', nargs='+', default=None, help='model names (default: present TARGETS + the MS1M ONNX twin)')
    ap.add_argument('--folds', nargs='+', type=int, default=None, help='1-based folds (default: all 10)')
    ap.add_argument('--n-pairs', type=int, default=None, help='balanced subset of the selected pairs')
    ap.add_argument('--device', default=None)
    ap.add_argument('--batch-size', type=int, default=64)
    ap.add_argument('--threads', type=int, default=int(os.environ.get('OMP_NUM_THREADS', 1)))
    ap.add_argument('--no-cache', action='store_true')
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    present = set(list_models())
    models = a.models or [m for m in TARGETS + ['mobilefacenet_ms1m_onnx'] if m in present]
    t = time.time()
    res = lfw_verification(models, folds=a.folds, n_pairs=a.n_pairs, device=a.device, batch_size=a.batch_size,
                           cache=not a.no_cache, progress=sys.stderr.isatty())
    for n, r in res.items():
        r['readme_acc_folds12'] = REGISTRY[n].lfw_acc
        r.pop('fold_acc', None) if a.folds and len(a.folds) > 2 else None
    print(json.dumps({'models': res, 'folds': a.folds or list(range(1, 11)), 'n_pairs': a.n_pairs,
                      'seconds': round(time.time() - t, 1), 'torch': torch.__version__}, indent=1))

if __name__ == '__main__': main()
