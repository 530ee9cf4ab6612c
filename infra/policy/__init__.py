"""The policy rules (rules.py) and the CrossGuard pack built from them (__main__.py)."""
