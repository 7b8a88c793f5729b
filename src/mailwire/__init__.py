"""mailwire: drop-in, faster and hardened replacements for ``poplib`` and ``imaplib``.

Use ``from mailwire import poplib`` where you would ``import poplib``.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
