"""The recorder process's CPU priority: idle class while it keeps up, normal when it falls behind.

On a core shared with the gateway's event loop, a recorder batch of a few milliseconds delays any
request that arrives meanwhile: the kernel does not preempt a running task for a waking one of the
same class. While the recorder is under ``SCHED_IDLE`` it does, at once, so a waking loop does not
wait for the CPU behind recording (it still shares the core's caches, and the machine's disk).
An idle-class task gets almost no CPU while others want it, though, so when the records the
gateway still holds pass a high mark, or one has waited too long (recording/remote.py), the
recorder is switched back to the normal class until it has caught up. Meanwhile it competes with
the loop for the CPU like any process, and a batch can delay a request again: the price of not
losing ground under sustained load. Leaving ``SCHED_IDLE`` needs CAP_SYS_NICE (or an RLIMIT_NICE
of 20): without it the recorder stays in the normal class, and always competes. Linux only;
elsewhere nothing changes.
"""

from __future__ import annotations

import logging
import os
import threading

log = logging.getLogger("modelmeter.recorder")


def can_switch() -> bool:
    """Whether this process may move a task out of SCHED_IDLE again (tried on a throwaway thread)."""
    if not hasattr(os, "sched_setscheduler") or not hasattr(os, "SCHED_IDLE"):
        return False
    result: list[bool] = []

    def probe() -> None:
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, name="modelmeter-sched-probe")
    thread.start()
    thread.join()
    return bool(result and result[0])


def set_idle(pid: int, idle: bool) -> bool:
    """Every thread of process ``pid`` and of its child processes (the finisher process,
    recording/finishing.py) to the idle class (or back); False if it could not be done."""
    policy = os.SCHED_IDLE if idle else os.SCHED_OTHER
    tids = _threads(pid)
    if not tids:
        return False
    for tid in list(tids):
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                tids += [t for child in f.read().split() for t in _threads(int(child))]
        except OSError:  # (a kernel without the file: the children keep the class they started with)
            continue
    done = True
    for tid in tids:
        try:
            os.sched_setscheduler(tid, policy, os.sched_param(0))
        except ProcessLookupError:
            continue  # a thread that just ended
        except OSError as exc:
            log.warning("could not change the recorder's CPU class (%s)", exc)
            done = False
    return done


def _threads(pid: int) -> list[int]:
    try:
        return [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return []
