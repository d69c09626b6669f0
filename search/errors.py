"""The error of a wrong query, shared by the engine and the text encoders."""


class QueryError(ValueError):
    """The query itself is wrong (empty, unknown keyframe, bad filter); the message says how."""
