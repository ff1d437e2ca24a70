"""The `runner` command line: builds run specs, executes them, and is the warehouse's only writer."""
