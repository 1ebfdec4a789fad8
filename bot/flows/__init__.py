"""The use cases: one module per flow. Plain values in (who acts, on what, why), typed results out.

These are the only modules that call the approval store and Databricks on a user's behalf, and the
only place that decides who may do what. Every surface (Slack, the CLI, the demo) calls a flow and
renders its result.
"""
