"""Small example workflows used by the README and the CLI tests."""
