"""Dockerfile planning: parse, reorder, move ARGs and late copies, .dockerignore, cache tables."""
