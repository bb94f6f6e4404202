"""The pure domain of Tether: job model, status graph, envelopes, errors, clock and ids.

Nothing here imports boto3 or reads the environment, so all of it is unit-testable in
milliseconds.
"""
