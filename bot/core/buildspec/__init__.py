"""Buildspec planning: analysis, edits, proofs, findings, and the CodeBuild facts they rely on."""
