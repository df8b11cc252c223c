"""The studio: a web page where a person paints with a model by prompt and by picking parents.

`session.StudioSession` holds one person's work and can be driven from Python; `app.build_app` lays it out
with Gradio. Models are loaded once and shared by every session (`models.SharedModels`).
"""
