"""sockplay's TUI: the Textual app on top of the playground engine."""
