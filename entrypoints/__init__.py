"""The ways patbot is started: the `patbot` command line, `serve`, `demo` and the weekly commands, and the
one composition root (`bootstrap.Application`) they all build their parts with."""
