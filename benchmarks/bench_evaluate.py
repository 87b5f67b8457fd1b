"""The full evaluation (issue 5): learn from one photo, attack the written photos, all baselines.

Prints one JSON object (config, versions, summary rows) and writes the record, a markdown table and
figures. Resumable: re-running with the same --out continues where it stopped.

    python benchmarks/bench_evaluate.py --subjects 20 --out results/eval.json --figures figures/eval
    python benchmarks/bench_evaluate.py --scheduler local --workers 6 ...     # Dask LocalCluster
    python benchmarks/bench_evaluate.py --scheduler tcp://host:8786 ...       # an existing Dask cluster
    python benchmarks/bench_evaluate.py --tiny                                # CI-sized smoke run
"""
import argparse, json, sys, time
from pathlib import Path

from facecloak.evaluate import EvalConfig, run_evaluation, summarize, markdown_table, plot_report, CONDITIONS


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--subjects', type=int, default=20)
    ap.add_argument('--probes', type=int, default=8)
    ap.add_argument('--methods', default='none,noise,universal1,opom,facecloak,facecloak_uniform,pgd')
    ap.add_argument('--epsilons', default='4,8,12')
    ap.add_argument('--sweep', default='universal1,facecloak')
    ap.add_argument('--mode', default='fixed', choices=['fixed', 'loo'])
    ap.add_argument('--conditions', default=','.join(CONDITIONS))
    ap.add_argument('--distractors', type=int, default=500)
    ap.add_argument('--targets', default=None, help='comma-separated; default: every model present')
    ap.add_argument('--scheduler', default=None, help="None: in process; 'local': Dask LocalCluster; or an address")
    ap.add_argument('--workers', type=int, default=2)
    ap.add_argument('--memory-limit', default='6GB')
    ap.add_argument('--device', default=None)
    ap.add_argument('--out', default='eval.json')
    ap.add_argument('--figures', default=None)
    ap.add_argument('--tiny', action='store_true', help='2 subjects, 2 probes, 2 methods, 100 distractors')
    a = ap.parse_args(argv)
    import re
    split = lambda s: tuple(x for x in re.split(r',(?![^\[]*\])', s) if x)   # commas outside [...]
    cfg = EvalConfig(n_subjects=a.subjects, max_probes=a.probes, methods=split(a.methods),
                     epsilons=tuple(float(e) for e in split(a.epsilons)), sweep=split(a.sweep), mode=a.mode,
                     conditions=split(a.conditions), n_distractors=a.distractors,
                     targets=split(a.targets) if a.targets else None)
    if a.tiny:
        cfg = EvalConfig(n_subjects=2, max_probes=2, methods=('none', 'noise'), epsilons=(8.,), sweep=(), n_distractors=100,
                         conditions=('clean', 'jpeg50'), targets=('mobilefacenet_ms1m', 'edgeface_xs'), lpips_net=None)
    t0 = time.time()
    rec = run_evaluation(cfg, a.out, scheduler=a.scheduler, n_workers=a.workers, memory_limit=a.memory_limit, device=a.device)
    rows = {c: summarize(rec, c) for c in cfg.conditions}
    md = '\n\n'.join(f'### condition: {c}\n\n' + markdown_table(r) for c, r in rows.items())
    Path(a.out).with_suffix('.md').write_text(md + '\n')
    if a.figures: plot_report(rec, a.figures)
    print(json.dumps(dict(config=rec['config'], versions=rec['versions'], seconds=round(time.time() - t0, 1),
                          summary=rows), default=str))


if __name__ == '__main__': main()
