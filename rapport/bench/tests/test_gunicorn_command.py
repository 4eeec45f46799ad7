"""The benchmark server runs the worker class it says it runs: gunicorn turns a sync worker
with more than one thread into a gthread worker, so --threads goes only with gthread."""

import pytest
from gunicorn.config import Config

from rapport.bench.management.commands.bench import gunicorn_command


def _resolved(argv: list[str]) -> Config:
    # gunicorn's own command-line parser and settings, as `python -m gunicorn` would apply them.
    args = argv[argv.index("rapport.wsgi:application") + 1 :]
    cfg = Config()
    for name, value in vars(cfg.parser().parse_args(args)).items():
        if value is not None and name in cfg.settings:
            cfg.set(name, value)
    return cfg


@pytest.mark.parametrize(("worker_class", "threads"), [("sync", 1), ("gthread", 4)])
def test_the_server_runs_the_worker_class_asked_for(worker_class: str, threads: int) -> None:
    cfg = _resolved(gunicorn_command(8000, worker_class=worker_class, threads=4))
    assert cfg.worker_class_str == worker_class
    assert cfg.threads == threads
