"""Benchmark a learning-like torch workload in a Dask worker with Dask's default environment and with
`facecloak.core.local_cluster`'s, beside the parent process, and print one JSON object.

    python benchmarks/bench_dask_malloc.py [--steps 8] [--batch 12] [--model mobilefacenet_ms1m]

The workload is --steps forward and backward passes of --batch aligned 112x112 images through one recognition
model on one thread: what learning a mask does, without data. It runs three times: in this process; in a worker
of a plain `LocalCluster` (Dask's nanny sets `MALLOC_TRIM_THRESHOLD_=65536`, which switches off glibc's dynamic
mmap threshold, so every tensor above 128 KB is a fresh zero-filled mapping); and in a worker of
`local_cluster` (`DASK_WORKER_ENV` raises the mmap threshold to 32 MiB). For each: wall seconds, user and
system CPU seconds and minor page faults of the workload. Run it on an idle machine.
"""
import argparse, json, os, platform


def workload(model: str, steps: int, batch: int) -> dict:
    "Forward + backward `steps` times on one thread; the resources the loop used."
    import resource, time, torch
    torch.set_num_threads(1)
    from facecloak.models import load_model
    m = load_model(model, device='cpu')
    x = torch.rand(batch, 3, 112, 112, requires_grad=True)
    m(x).sum().backward()                                   # warm-up
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    for _ in range(steps): m(x).sum().backward()
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    return dict(wall_s=round(time.perf_counter() - t0, 2), user_s=round(r1.ru_utime - r0.ru_utime, 2),
                sys_s=round(r1.ru_stime - r0.ru_stime, 2), minor_faults=r1.ru_minflt - r0.ru_minflt)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--steps', type=int, default=8); ap.add_argument('--batch', type=int, default=12)
    ap.add_argument('--model', default='mobilefacenet_ms1m')
    a = ap.parse_args(argv)
    if a.steps < 1 or a.batch < 1: raise SystemExit('--steps and --batch must be >= 1')
    from dask.distributed import Client, LocalCluster
    from facecloak.core import local_cluster
    out = dict(steps=a.steps, batch=a.batch, model=a.model, machine=platform.processor() or platform.machine())
    out['in_process'] = workload(a.model, a.steps, a.batch)
    for name, make in (('dask_default', lambda: LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                                                 dashboard_address=None, memory_limit='4GB')),
                       ('local_cluster', lambda: local_cluster(1, memory_limit='4GB'))):
        saved = os.environ.pop('MALLOC_MMAP_THRESHOLD_', None)     # a plain worker must not inherit the fix
        try:
            with make() as cl, Client(cl) as c:
                out[name] = c.submit(workload, a.model, a.steps, a.batch, pure=False).result()
        finally:
            if saved is not None: os.environ['MALLOC_MMAP_THRESHOLD_'] = saved
    out['slowdown_dask_default'] = round(out['dask_default']['wall_s'] / out['in_process']['wall_s'], 2)
    out['slowdown_local_cluster'] = round(out['local_cluster']['wall_s'] / out['in_process']['wall_s'], 2)
    print(json.dumps(out))


if __name__ == '__main__':
    main()
