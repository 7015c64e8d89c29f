"""`python -m evaluator`: the entry point, so it imports the application's main (evaluator/app/cli.py)."""

from evaluator.app.cli import main

main()
