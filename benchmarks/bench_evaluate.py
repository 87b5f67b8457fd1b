"""The full evaluation (issue 5): learn from one photo, attack the written photos, all baselines.

The same command as `facecloak eval` (`facecloak.cli.cmd_eval`, every option is its): prints one JSON
object (config, versions, seconds, summary rows) and writes the record, a markdown table and figures.
Resumable: re-running with the same --out continues where it stopped.

    python benchmarks/bench_evaluate.py --subjects 20 --out results/eval.json --figures figures/eval
    python benchmarks/bench_evaluate.py --scheduler local --workers 6 ...     # Dask LocalCluster
    python benchmarks/bench_evaluate.py --scheduler tcp://host:8786 ...       # an existing Dask cluster
    python benchmarks/bench_evaluate.py --tiny                                # CI-sized smoke run
"""
import sys

from facecloak.cli import main as facecloak


def main(argv=None) -> int:
    "`facecloak eval ARGV...`"
    return facecloak(['eval', *(sys.argv[1:] if argv is None else argv)])


if __name__ == '__main__': sys.exit(main())
