"""WikiArt scraper: polite HTTP client, site parsing, manifest, and the scrape run itself."""

from data_modules.scrape.scraper import ScrapeSummary, scrape

__all__ = ["ScrapeSummary", "scrape"]
