"""Texts people read: the pull request, the comments, the one diff, the CLI report, the setup page."""
