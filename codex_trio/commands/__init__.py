"""The `codex-trio` subcommands, one module each; `surfaces.add_commands` registers them."""
