"""The command: sockplay's front door. The only layer that knows both the TUI (widgets) and the engine."""
