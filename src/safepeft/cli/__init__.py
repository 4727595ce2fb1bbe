"""The `safepeft` command line: thin typer shims over the library, one module per command."""
