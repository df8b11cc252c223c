"""Which process of a distributed run this is, read from its launcher's environment before Lightning starts.

Every process of a multi-GPU or multi-node run composes the config itself: all must agree on the run folder,
and only the first may write the folder's own files (Hydra's .hydra/ and log).
"""

import os

# torchrun (RANK, LOCAL_RANK, GROUP_RANK), Lightning's launcher (LOCAL_RANK, NODE_RANK), srun (SLURM_PROCID)
RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "SLURM_PROCID")


def is_rank_zero() -> bool:
    """Whether this is the run's first process: every rank a launcher has set is 0 (none set: a single process)."""
    return all(int(os.environ.get(name) or 0) == 0 for name in RANK_VARIABLES)


def shared_run_name(default: str) -> str:
    """The run folder's name, alike in every process of the run: `MAGNET_RUN_NAME` when set; the SLURM job and
    step for a step of several tasks, or torchrun's rendezvous id (each process reads the clock at its own
    moment); else `default`, the timestamp of a single process."""
    env = os.environ
    if env.get("MAGNET_RUN_NAME"):
        return env["MAGNET_RUN_NAME"]
    if int(env.get("SLURM_STEP_NUM_TASKS") or env.get("SLURM_NTASKS") or 1) > 1 and env.get("SLURM_JOB_ID"):
        return f"slurm-{env['SLURM_JOB_ID']}.{env.get('SLURM_STEP_ID', 0)}"
    if env.get("TORCHELASTIC_RUN_ID", "none") != "none":
        return f"torchrun-{env['TORCHELASTIC_RUN_ID']}"
    return default
