"""therapy-scheduler: the scheduling backend of a behavioural-therapy practice."""

__version__ = "0.1.0"
