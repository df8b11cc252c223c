"""python -m magnet.models: the published models by name, with size, licence and whether each is cached."""

from rich.console import Console
from rich.filesize import decimal
from rich.table import Table

from magnet.models.registry import MODELS
from magnet.models.resolve import CACHE_ENV, cached_path, models_dir


def models_table() -> Table:
    table = Table("name", "arch", "px", "format", "size", "licence", "cached", "what",
                  caption=f"cache: {models_dir()} (${CACHE_ENV}/models); use: python generate.py ckpt_path=NAME")
    table.columns[0].no_wrap = True
    for name in MODELS.names():
        model = MODELS.get(name)
        path = cached_path(model)
        size = model.size if model.size is not None else (path.stat().st_size if path.is_file() else None)
        table.add_row(name, model.arch, str(model.resolution), model.format,
                      decimal(size) if size is not None else "unknown", model.licence,
                      "yes" if path.is_file() else "no", model.description)
    return table


if __name__ == "__main__":
    console = Console()
    if not console.is_terminal:  # a log or a pipe: wide rows rather than wrapped ones
        console.width = 160
    console.print(models_table())
