"""DataLoader workers outlive the process group's SIGTERMs (the main process saves first) but never their release."""

from __future__ import annotations

import functools
import os
import signal
import time

import torch
from torch.utils.data import DataLoader, Dataset

from fer_lightning.data.datamodule import WorkerRelease, init_worker


class SlowAfterTheFirstBatch(Dataset):
    """A worker busy for a minute when the DataLoader shuts down: it misses the shutdown sentinel."""

    def __len__(self) -> int:
        return 8

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if index >= 2:
            time.sleep(60)
        return torch.zeros(1), 0


def test_a_worker_leaves_the_groups_sigterms_to_the_main_process_and_ends_once_released() -> None:
    class Transformless(SlowAfterTheFirstBatch):  # init_worker seeds the dataset's albumentations pipeline
        transform = type("NoPipeline", (), {"set_random_seed": staticmethod(lambda seed: None)})()

    release = WorkerRelease()
    init = functools.partial(init_worker, release=release)
    loader = DataLoader(Transformless(), batch_size=2, num_workers=1, worker_init_fn=init)
    batches = iter(loader)
    next(batches)
    worker = batches._workers[0]
    for _ in range(2):  # `kill -- -<pgid>`, then `timeout` relaying it to the group again
        os.kill(worker.pid, signal.SIGTERM)
    time.sleep(0.5)
    assert worker.is_alive()  # left to the main process, which saves last.ckpt first
    release.release()  # what the datamodule's on_exception and the exit handler do
    started = time.monotonic()
    batches._shutdown_workers()  # sentinel, a 5 s join, then terminate(): this worker is still asleep
    worker.join(timeout=10)
    assert not worker.is_alive(), "a worker that ignores terminate() leaves its parent waiting in waitpid"
    assert time.monotonic() - started < 20
