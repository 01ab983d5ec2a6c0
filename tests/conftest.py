"""Test order for `make test` (pytest -n 2 --dist worksteal): the longest tests first, so that neither worker is left
running one long test alone at the end while the other idles (longest-processing-time-first scheduling).

The durations are the ones `--durations` printed on 2 cores; a test not named here keeps its place after them.
Only the order changes: every test still runs, and each is independent of the others."""

LONGEST_FIRST = [   # node-id substrings, longest first (seconds measured on a 2-vCPU VM, under -n 2)
    "test_experiments.py::test_smoke_tier_reproduces_references",                          # ~250 s
    "test_distributed.py::test_experiment_10_with_two_processes_gives_the_one_process_results",   # ~65 s
    "test_experiments.py::test_jepa_score_runs_with_a_random_timm_encoder",                 # ~37 s
    "test_experiments.py::test_probe_runs_with_a_timm_weights_file",                        # ~30 s
]
# Not moved: tests whose time is a module-scoped fixture their neighbours share (test_runner's CLI calls, test_faults'
# interrupted run): pulled to the front alone, the fixture would be set up on both workers. (`--dist loadfile`, whole
# modules per worker, was measured too: 671 s against 572 s for test-level order, one worker idle at the end.)


def _rank(item) -> int:
    return next((i for i, key in enumerate(LONGEST_FIRST) if key in item.nodeid), len(LONGEST_FIRST))


def pytest_collection_modifyitems(session, config, items):
    items.sort(key=_rank)   # stable: the others keep their collected order
