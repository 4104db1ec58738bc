"""A container module whose import raises something other than ImportError."""

msg = "the container module is broken"
raise RuntimeError(msg)
