"""The studio's page: Gradio layout and wiring only; every action is a StudioSession method.

Each browser session gets its own StudioSession (gr.State) and folder; a failed action shows its message
in the page and leaves the page and the session as they were.
"""

from __future__ import annotations

import functools
import inspect
import logging
import uuid
from pathlib import Path

import gradio as gr

from magnet.errors import UserError, find_user_error
from magnet.search.breeding import MAX_CHOSEN
from magnet.studio.models import SharedModels, model_choices, page_reference
from magnet.studio.session import StudioSession, StudioSettings

log = logging.getLogger(__name__)
ALL_LAYERS = "all layers"
# System fonts only: the default theme would fetch its fonts from Google, and the studio runs offline.
THEME = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                          font_mono=["ui-monospace", "monospace"])
CSS = "#gallery .fixed-height { min-height: 0; }"  # the gallery as tall as its rows of paintings, not 450 px


def _warn(err: Exception) -> dict:
    """Show what went wrong as a message in the page and leave every output as it was."""
    user_error = find_user_error(err)
    if user_error is None:
        log.exception("studio request failed")
    gr.Warning(str(user_error) if user_error is not None else f"{type(err).__name__}: {err}", duration=20)
    return gr.skip()


def shows_errors(fn):
    """A handler (or a streaming handler's generator) whose failure becomes a message in the page."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def stream(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except Exception as err:
                yield _warn(err)
        return stream

    @functools.wraps(fn)
    def call(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as err:
            return _warn(err)
    return call


def layer_range(choice: str) -> str | None:
    """A layers dropdown's choice as the session takes it: a range's name, or None for every layer."""
    return None if choice == ALL_LAYERS else choice


def gallery_items(session: StudioSession) -> list:
    """The current generation's thumbnails captioned with index and score; ◆ a parent carried over, ★ picked."""
    if session.current < 0:
        return []
    generation = session.entry.generation
    items = []
    for i, (thumb, score) in enumerate(zip(generation.thumbnails, generation.scores)):
        marks = (" ◆" if i < generation.num_parents else "") + (" ★" if i in session.chosen else "")
        items.append((thumb.permute(1, 2, 0).numpy(), f"{i}: {float(score):+.3f}{marks}"))
    return items


def history_update(session: StudioSession):
    choices = [(f"{k}: {e.label} | {e.prompt}", k) for k, e in enumerate(session.history)]
    return gr.update(choices=choices, value=session.current if session.current >= 0 else None)


def favourites_update(session: StudioSession, value=None):
    names = session.favourite_names()
    return gr.update(choices=[(name, k) for k, name in enumerate(names)], value=value)


def status_line(session: StudioSession) -> str:
    if session.current < 0:
        return "no generation yet"
    entry = session.entry
    scores = entry.generation.scores
    return (f"generation {session.current}: {entry.label} | {entry.prompt} | best {float(scores.max()):+.4f} | "
            f"{len(scores)} paintings")


def parents_line(session: StudioSession) -> str:
    picked = ", ".join(map(str, session.chosen)) or "none"
    return f"parents picked: {picked} (click up to {MAX_CHOSEN} paintings)"


def build_app(models: SharedModels, settings: StudioSettings, sessions_dir, runs_dir,
              generations: int = 5) -> gr.Blocks:
    """The page; `sessions_dir` gets one folder per browser session, `runs_dir` is train.py's runs folder."""
    sessions_dir = Path(sessions_dir)

    def view(session):
        return gallery_items(session), status_line(session), parents_line(session), history_update(session)

    @shows_errors
    def new_session():
        session = StudioSession(models, sessions_dir / uuid.uuid4().hex, settings)
        return session, session.describe()

    @shows_errors
    def load_model(session, ref, clip_model, clip_weights):
        session.set_model(page_reference(ref, runs_dir))
        session.set_clip(clip_model.strip(), clip_weights.strip() or None)
        return session.describe()

    @shows_errors
    def search(session, prompt, seed, strategy, n_generations, image_weight,
               progress=gr.Progress()):  # noqa: B008 (Gradio finds its progress bar by this default)
        total = int(n_generations) + 1
        for k, _ in enumerate(session.search(prompt, int(seed), strategy, int(n_generations), image_weight)):
            progress((k + 1, total), desc="generations")
            yield view(session)

    @shows_errors
    def vary(session, prompt, seed, strategy, n_generations, image_weight,
             progress=gr.Progress()):  # noqa: B008
        total = int(n_generations) + 1
        for k, _ in enumerate(session.vary(prompt, int(seed), strategy, int(n_generations), image_weight)):
            progress((k + 1, total), desc="generations")
            yield view(session)

    @shows_errors
    def project(session, file, project_steps, name, progress=gr.Progress()):  # noqa: B008
        if file is None:
            raise UserError("no image uploaded to project")
        path = session.project(file, int(project_steps), f"{name or 'painting'}-projection",
                               progress=lambda done, total: progress((done, total), desc="projection steps"))
        return str(path), str(path), favourites_update(session, len(session.favourites) - 1)

    @shows_errors
    def pick(session, evt: gr.SelectData):
        session.pick(int(evt.index))
        return gallery_items(session), parents_line(session), int(evt.index)

    @shows_errors
    def breed(session, prompt, mutation, blend, image_weight):
        session.breed(prompt, mutation, blend, image_weight)
        return view(session)

    @shows_errors
    def undo(session):
        session.undo()
        return view(session)

    @shows_errors
    def go_to(session, index):
        if index is not None:
            session.go_to(int(index))
        return view(session)

    @shows_errors
    def paint(session, index, psi, steps, name, layers, *amounts):
        path = session.painting(int(index), psi, int(steps), name or "painting", amounts, layer_range(layers))
        return str(path), str(path)

    @shows_errors
    def keep(session):
        session.keep()
        return favourites_update(session, len(session.favourites) - 1)

    @shows_errors
    def mix_with(session, favourite, layers, name):
        path = session.mix(favourite, layer_range(layers), f"{name or 'painting'}-mixed")
        return str(path), str(path)

    @shows_errors
    def walk(session, seconds, progress=gr.Progress()):  # noqa: B008
        path = session.walk(seconds=seconds, progress=lambda done, total: progress((done, total), desc="frames"))
        return str(path), str(path)

    @shows_errors
    def sheet(session):
        return str(session.contact_sheet())

    @shows_errors
    def save(session, name):
        return str(session.save(name or "session"))

    @shows_errors
    def open_saved(session, file):
        if file is None:
            raise UserError("no session file uploaded")
        session.open(file)
        return *view(session), favourites_update(session)

    @shows_errors
    def image_prompt(session, file):
        if file is not None:
            session.set_image_prompt(file)
        return "image prompt set" if file is not None else ""

    strategies = list(settings.strategies)
    explore = settings.explore
    ranges = [ALL_LAYERS, *explore.ranges]
    with gr.Blocks(title="magnet studio", analytics_enabled=False) as demo:
        state = gr.State()
        gr.Markdown("# magnet studio")
        with gr.Row():
            model = gr.Dropdown(model_choices(runs_dir), value=settings.model, allow_custom_value=True, scale=3,
                                label="model: a published name, the last training run, or a local checkpoint file",
                                elem_id="model")
            clip_model = gr.Textbox(settings.clip_model, label="CLIP model", elem_id="clip-model")
            clip_weights = gr.Textbox(settings.clip_pretrained or "", label="CLIP weights (tag or file; empty: random)",
                                      elem_id="clip-weights")
            load = gr.Button("load model", elem_id="load")
        info = gr.Markdown(elem_id="info")
        with gr.Row():
            prompt = gr.Textbox(label="prompt", placeholder="orange triangles | blue:0.5 | text:-1", scale=3,
                                elem_id="prompt")
            seed = gr.Number(0, precision=0, minimum=0, label="seed", elem_id="seed")
            strategy = gr.Dropdown(strategies, value=strategies[0], label="strategy", elem_id="strategy")
            n_generations = gr.Number(generations, precision=0, minimum=0, maximum=50, label="generations",
                                      elem_id="generations")
        with gr.Accordion("image prompt", open=False):
            with gr.Row():
                image = gr.Image(type="filepath", label="image whose CLIP embedding joins the prompt",
                                 sources=["upload"], elem_id="image-prompt")
                image_weight = gr.Slider(-1, 1, value=0, step=0.05, label="its weight (0: unused)")
                image_note = gr.Markdown()
        with gr.Row():
            run = gr.Button("search", variant="primary", elem_id="search")
            stop = gr.Button("stop", elem_id="stop")
        status = gr.Markdown("no generation yet", elem_id="status")
        gallery = gr.Gallery(label="current generation: click paintings to pick them as parents "
                                   "(★ picked, ◆ parents of this one)", columns=8,
                             allow_preview=False, object_fit="contain", format="png", elem_id="gallery")
        parents = gr.Markdown(elem_id="parents")
        with gr.Row():
            mutation = gr.Slider(0, 1, value=settings.breeding.mutation_amount, step=0.01,
                                 label="mutation strength", elem_id="mutation")
            blend = gr.Slider(0, 1, value=settings.breeding.clip_weight, step=0.05,
                              label="CLIP blend: 0 your picks alone (Picbreeder), 1 CLIP's best alone (MAGnet)",
                              elem_id="blend")
            breed_button = gr.Button("breed", variant="primary", elem_id="breed")
            undo_button = gr.Button("undo", elem_id="undo")
        history = gr.Dropdown([], label="history: go back to a generation", elem_id="history")
        with gr.Accordion("painting", open=True):
            with gr.Row():
                index = gr.Number(0, precision=0, minimum=0, label="painting (the last one clicked)",
                                  elem_id="index")
                psi = gr.Slider(0, 1.5, value=settings.truncation_psi, step=0.05, label="truncation",
                                elem_id="truncation")
                steps = gr.Number(0, precision=0, minimum=0, maximum=500, label="refinement steps",
                                  elem_id="steps")
                name = gr.Textbox("painting", label="file name", elem_id="name")
                paint_button = gr.Button("paint", variant="primary", elem_id="paint")
            with gr.Row():
                edit_layers = gr.Dropdown(ranges, value=ALL_LAYERS, label="layers the edits move",
                                          elem_id="edit-layers")
                amounts = [gr.Slider(-explore.amount, explore.amount, value=0, step=0.1,
                                     label=f"edit {k} (closed-form direction)", elem_id=f"edit-{k}")
                           for k in range(explore.directions)]
            with gr.Row():
                painting = gr.Image(label="painting", interactive=False, elem_id="painting")
                painting_file = gr.File(label="painting.png (re-renders with generate.py from_png=)",
                                        elem_id="painting-file")
            with gr.Row():
                keep_button = gr.Button("keep as favourite", elem_id="keep")
                favourite = gr.Dropdown([], label="favourites", elem_id="favourites")
                mix_layers = gr.Dropdown(ranges, value=next(iter(explore.ranges), ALL_LAYERS),
                                         label="layers taken from the favourite", elem_id="mix-layers")
                mix_button = gr.Button("mix with the favourite", elem_id="mix")
            with gr.Row():
                seconds = gr.Number(explore.seconds, minimum=0.1, maximum=600, label="walk seconds",
                                    elem_id="walk-seconds")
                walk_button = gr.Button("walk through the favourites", elem_id="walk")
                video = gr.Video(label="walk", interactive=False, elem_id="walk-video")
                video_file = gr.File(label="walk.mp4", elem_id="walk-file")
            with gr.Row():
                vary_button = gr.Button("vary this painting: search around it for the prompt", elem_id="vary")
        with gr.Accordion("project an image: the latent that paints it becomes a favourite", open=False,
                          elem_id="project-panel"):
            with gr.Row():
                projected = gr.Image(type="filepath", label="image to project", sources=["upload"],
                                     elem_id="project-image")
                project_steps = gr.Number(settings.project.steps, precision=0, minimum=1, maximum=5000,
                                          label="projection steps", elem_id="project-steps")
                project_button = gr.Button("project", elem_id="project")
        with gr.Accordion("files and sessions", open=False):
            with gr.Row():
                sheet_button = gr.Button("contact sheet", elem_id="sheet")
                sheet_file = gr.File(label="contact sheet", elem_id="sheet-file")
                session_name = gr.Textbox("session", label="session name", elem_id="session-name")
                save_button = gr.Button("save session", elem_id="save")
                saved_file = gr.File(label="saved session", elem_id="saved-file")
                opened = gr.File(label="open a saved session", file_types=[".pt"], elem_id="open")

        views = [gallery, status, parents, history]
        demo.load(new_session, outputs=[state, info])
        load.click(load_model, [state, model, clip_model, clip_weights], info)
        running = run.click(search, [state, prompt, seed, strategy, n_generations, image_weight], views)
        stop.click(None, cancels=[running])
        gallery.select(pick, state, [gallery, parents, index])
        breed_button.click(breed, [state, prompt, mutation, blend, image_weight], views)
        undo_button.click(undo, state, views)
        history.input(go_to, [state, history], views)
        paint_button.click(paint, [state, index, psi, steps, name, edit_layers, *amounts], [painting, painting_file])
        keep_button.click(keep, state, favourite)
        mix_button.click(mix_with, [state, favourite, mix_layers, name], [painting, painting_file])
        varying = vary_button.click(vary, [state, prompt, seed, strategy, n_generations, image_weight], views)
        stop.click(None, cancels=[varying])
        project_button.click(project, [state, projected, project_steps, name], [painting, painting_file, favourite])
        walk_button.click(walk, [state, seconds], [video, video_file])
        sheet_button.click(sheet, state, sheet_file)
        save_button.click(save, [state, session_name], saved_file)
        opened.upload(open_saved, [state, opened], [*views, favourite])
        image.upload(image_prompt, [state, image], image_note)
    return demo
