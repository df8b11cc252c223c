"""Data pipeline: scrape WikiArt -> square crops -> CLIP filter -> LightningDataModule.

Submodules are imported where used, so the scraper and the crop workers start without torch.
"""
