"""The studio: a web page to paint in, by prompt and by picking parents (see magnet/studio/).

python studio.py                        # http://127.0.0.1:7860, MAGnet's published generator
python studio.py host=0.0.0.0 port=8080 # reachable from other machines
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported: it reads it at import

import hydra  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402

from magnet.checks import check_float, check_int  # noqa: E402
from magnet.entrypoints import instantiate, pick_device, settings_of  # noqa: E402
from magnet.errors import config_key, exit_on_user_error  # noqa: E402
from magnet.explore.projection import Projection  # noqa: E402
from magnet.resolvers import register_resolvers
from magnet.search.breeding import Breeding  # noqa: E402
from magnet.search.refine import Refiner  # noqa: E402
from magnet.studio.models import SharedModels  # noqa: E402
from magnet.studio.session import ExploreSettings, StudioSettings  # noqa: E402


def studio_settings(cfg: DictConfig) -> StudioSettings:
    """The sessions' settings from the config, each strategy checked by building it once."""
    strategies = {}
    for name, node in cfg.strategies.items():
        instantiate(node, f"strategies.{name}")
        strategies[name] = {k: v for k, v in OmegaConf.to_container(node, resolve=True).items() if k != "_target_"}
    with settings_of(cfg, "breeding"):
        breeding = Breeding(**OmegaConf.to_container(cfg.breeding, resolve=True))
    with settings_of(cfg, "refine"):
        refine = Refiner(**OmegaConf.to_container(cfg.refine, resolve=True))
    with settings_of(cfg, "explore"):
        explore = ExploreSettings(**OmegaConf.to_container(cfg.explore, resolve=True))
    with settings_of(cfg, "project"):  # the page shows the result, not a video of the steps
        project = Projection(**OmegaConf.to_container(cfg.project, resolve=True), video=False)
    check_float("vary.spread", cfg.vary.spread, at_least=0)
    check_int("max_upload_mb", cfg.max_upload_mb, at_least=1)
    check_int("port", cfg.port, at_least=0, at_most=65535)
    with settings_of(cfg, "search"):  # the other fields are checked above, so what fails here is under search.
        return StudioSettings(model=cfg.ckpt_path, clip_model=cfg.clip.model_name,
                              clip_pretrained=cfg.clip.pretrained, strategies=strategies, breeding=breeding,
                              refine=refine, explore=explore, project=project, vary_spread=cfg.vary.spread,
                              max_upload_bytes=cfg.max_upload_mb * 1_000_000,
                              **OmegaConf.to_container(cfg.search, resolve=True))


def build(cfg: DictConfig):
    """(the Gradio app, queued, and the launch arguments) for the config; the first model and CLIP are loaded."""
    settings = studio_settings(cfg)
    check_int("concurrency", cfg.concurrency, at_least=1)
    check_int("max_models", cfg.max_models, at_least=1)
    models = SharedModels(pick_device(cfg.device), cfg.max_models)
    with config_key("clip"):  # load what the first page shows now, so a bad setting fails here and not in the page
        models.clip(settings.clip_model, settings.clip_pretrained)
    models.generator(settings.model)
    generations = settings.strategies.get("genetic", {}).get("generations", 5)
    from magnet.studio.app import CSS, THEME, build_app  # gradio loads slowly: only once the settings are good

    demo = build_app(models, settings, f"{cfg.output_dir}/sessions", cfg.runs_dir, generations)
    demo.queue(default_concurrency_limit=cfg.concurrency)
    return demo, {**launch_options(cfg), "theme": THEME, "css": CSS}


def launch_options(cfg: DictConfig) -> dict:
    """Gradio's launch arguments: where to listen, no share link, the upload limit, errors shown in the page."""
    return {"server_name": cfg.host, "server_port": cfg.port, "share": False,
            "max_file_size": f"{cfg.max_upload_mb}mb", "show_error": True}


register_resolvers()  # before @hydra.main composes the config


@hydra.main(config_path="conf", config_name="studio", version_base="1.3")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    demo, launch = build(cfg)
    demo.launch(**launch)


if __name__ == "__main__":
    main()
