"""Governance: modes and kill switches, promotion evidence, readiness, automatic demotion.

One service per change (`mode_set`, `switch_set`), whether the browser, the
command line or the demotion task asks for it.
"""
