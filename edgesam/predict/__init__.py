"""`edgesam predict`: one image, point and box prompts, through the PyTorch reference or a bundle."""
