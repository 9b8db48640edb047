"""Entry points the distillation guide imports by path (``distillation.scripts.train_teachers``): thin facades over
the pipeline's own modules, so the guide's commands and the pipeline read one implementation."""
