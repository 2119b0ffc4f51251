"""``python -m isingscale`` (also what ``torchrun ... -m isingscale train`` runs)."""

from .cli import main

main()
