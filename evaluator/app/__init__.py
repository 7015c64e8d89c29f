"""The applications built on the library: the `evaluator` command line (cli.py and its command modules), the sweep
(sweep_config.py, sweep_run.py) and the reproduction page (reproduction.py).

The only code under evaluator/ that imports the PyTorch side (exporters); the library never imports evaluator.app.
"""
