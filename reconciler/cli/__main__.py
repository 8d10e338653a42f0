"""`python -m reconciler.cli` runs the `recon` command (used where the script is not on PATH)."""

from reconciler.cli.main import main

main()
