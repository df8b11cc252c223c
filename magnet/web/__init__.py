"""HTTP on the standard library, shared by the WikiArt scraper and the model downloads: one GET on the wire
(`transport`) and links as URIs (`urls`)."""
