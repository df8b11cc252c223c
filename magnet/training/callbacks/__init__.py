"""Lightning callbacks: sample grids, FID, search previews."""
