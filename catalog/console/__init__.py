"""The owner console: settings with a reason, segment policies, modes with evidence, switches.

Pages for the people who manage an automation (its owner, admins); every
write goes through the same validation as the loader (catalog/validation.py)
and, for modes and kill switches, through catalog/governance/changes.py.
"""
