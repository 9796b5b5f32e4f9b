"""Private helpers shared across kerasrnn's sub-packages (argument checks).

Nothing here is part of the public API.
"""

__all__ = []
