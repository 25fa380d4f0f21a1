"""The named composite transforms the stages are made of, each with its typed config.

A stage module reads from the store, applies a few of these and writes to the store; the
transforms know nothing of the store, so each can be tested on small in-memory inputs.
"""
