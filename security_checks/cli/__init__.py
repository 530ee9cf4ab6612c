"""The estate command line: every command is a thin layer over the runner, the store and the reports."""
