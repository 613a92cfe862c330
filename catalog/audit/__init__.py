"""Compliance: audit samples and verdicts, the tamper-evident trail and its attestations."""
