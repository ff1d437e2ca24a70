"""vjepa-lab's tests: a package, so that test files import their shared helpers as `tests.support`."""
