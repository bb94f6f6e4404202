"""The JobRunner: its Step Functions definition and the data its states pass along."""
