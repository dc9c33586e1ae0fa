"""The Jinja2 templates, shipped inside the package as `bot.templates` (pyproject.toml maps this folder)."""
