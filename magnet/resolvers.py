"""The resolvers our configs use beyond Hydra's; each entry point registers them before it composes a config.

Light on purpose (OmegaConf only): the data pipeline's entry point imports it too.
"""

from pathlib import Path

from omegaconf import OmegaConf

from magnet.ranks import is_rank_zero, shared_run_name

PROJECT_ROOT = Path(__file__).resolve().parents[1]  # the checkout: conf/, the entry points, data/ and logs/


def register_resolvers() -> None:
    """`${project_root:}` the checkout's folder, wherever a command is started from; `${shared_run_name:default}`
    the run folder's name, alike in every process of a DDP run; `${if_rank_zero:a,b}` a on its first process, b
    on the others (magnet.ranks)."""
    OmegaConf.register_new_resolver("project_root", lambda: str(PROJECT_ROOT), replace=True)
    OmegaConf.register_new_resolver("shared_run_name", shared_run_name, replace=True)
    OmegaConf.register_new_resolver("if_rank_zero", lambda first, others: first if is_rank_zero() else others,
                                    replace=True)
