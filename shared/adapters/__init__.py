"""The only modules that import boto3: one adapter per AWS service behind a typed interface."""
