"""The HTTP API and operator console (`surveil serve`); build it with `create_app`."""
